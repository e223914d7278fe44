/**
 * The history chain over HTTP, checked the way a third party would: the export and the proof go
 * to scripts/verify-export.mjs, which shares no code with the service.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import type { CommandInput } from '../../src/commands/schema.ts';
import { anchorSigner } from '../../src/ledger/anchor-signing.ts';
import { createAnchor } from '../../src/ledger/store/anchors.ts';
import { applyInputs } from '../helpers/random-stream.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

const run = promisify(execFile);
const SCRIPT = new URL('../../scripts/verify-export.mjs', import.meta.url).pathname;

describe('proofs and chain exports', () => {
  let db: TestDatabase;
  let config: Config;
  let app: ReturnType<typeof appWithoutKafka>;
  let alice: TestUser;
  let bob: TestUser;
  let service: TestUser;
  let dir: string;
  const signer = () => anchorSigner(config.anchors.signingKey);

  const apply = (...inputs: CommandInput[]) => applyInputs(db, config, inputs);

  const get = (url: string, user: TestUser) => app.inject({ method: 'GET', url, headers: user.header });

  /** Writes the export and the proof to files and runs the checker; its exit code and output. */
  async function check(chain: unknown, proof?: unknown): Promise<{ code: number; output: string }> {
    const chainFile = path.join(dir, 'chain.json');
    await writeFile(chainFile, JSON.stringify(chain));
    const args = [SCRIPT, '--chain', chainFile];
    if (proof) {
      const proofFile = path.join(dir, 'proof.json');
      await writeFile(proofFile, JSON.stringify(proof));
      args.push('--proof', proofFile, '--public-key', signer().publicKeyBase64);
    }
    try {
      const { stdout } = await run(process.execPath, args);
      return { code: 0, output: stdout };
    } catch (error) {
      const failed = error as { code: number; stdout: string };
      return { code: failed.code, output: failed.stdout };
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    app = appWithoutKafka(config, db);
    dir = await mkdtemp(path.join(tmpdir(), 'chain-'));
    [alice, bob, service] = await Promise.all([
      createUser(db, config),
      createUser(db, config),
      createUser(db, config, 'service'),
    ]);
    await apply(
      ...Array.from(
        { length: 7 },
        (_, i): CommandInput => ({
          id: `dep-${i}`,
          type: 'deposit',
          user_id: alice.id,
          amount: `${i + 1}.00`,
          comment: `top-up ${i}; "quoted" é`,
        }),
      ),
      { id: 'tr', type: 'transfer', user_id: alice.id, recipient_id: bob.id, amount: '2.50', comment: 'rent' },
      { id: 'dep-b', type: 'deposit', user_id: bob.id, amount: '1.00' },
    );
    await createAnchor(db.pool, signer());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await db?.drop();
  });

  it("exports a user's chain in pages that the standalone script checks against the signed anchor", async () => {
    const first = (await get(`/api/balances/chain/?user_id=${alice.id}&limit=5`, service)).json();
    expect(first.links).toHaveLength(5);
    expect(first.next_after_version).toBe('5');
    const second = (await get(`/api/balances/chain/?user_id=${alice.id}&after_version=5&limit=5`, service)).json();
    expect(second).toMatchObject({
      next_after_version: null,
      links: [{ version: '6' }, { version: '7' }, { version: '8' }],
    });
    const proof = (await get(`/api/balances/proof/?user_id=${alice.id}`, alice)).json();
    expect(proof).toMatchObject({
      user_id: alice.id,
      head: { version: '8', hash: second.links[2].hash },
      anchor: {
        key_id: signer().keyId,
        users: 2,
        leaf: { index: expect.any(Number), version: '8', hash: second.links[2].hash },
      },
    });
    const result = await check([first, second], proof);
    expect(result).toEqual({ code: 0, output: expect.stringContaining('ok   anchor') });
    expect(result.output).toContain(`ok   chain of user ${alice.id}: 8 link(s), head version 8`);
  });

  it('fails the export of a chain whose event was edited, at that link', async () => {
    const edited = (await get(`/api/balances/chain/?user_id=${alice.id}&limit=1000`, service)).json();
    edited.links[3].payloads[0] = edited.links[3].payloads[0].replace('"4.00"', '"40.00"');
    expect(await check(edited)).toEqual({ code: 1, output: expect.stringMatching(/^FAIL link 4: stored hash/) });
  });

  it('fails a chain rewritten from the start against the anchor kept from before', async () => {
    const proof = (await get(`/api/balances/proof/?user_id=${alice.id}`, alice)).json();
    const chain = (await get(`/api/balances/chain/?user_id=${alice.id}`, service)).json();
    expect((await check(chain, proof)).code).toBe(0);
    // Every link recomputed after the edit, as an operator covering it would: the chain holds on its own.
    let previous = Buffer.alloc(32);
    const { createHash } = await import('node:crypto');
    for (const link of chain.links) {
      link.payloads = link.payloads.map((p: string) => p.replace('"rent"', '"gift"'));
      previous = createHash('sha256').update(previous).update(link.payloads.join('\n')).digest();
      link.hash = previous.toString('hex');
    }
    expect((await check(chain)).code).toBe(0);
    expect(await check(chain, proof)).toEqual({
      code: 1,
      output: expect.stringMatching(/^FAIL anchor \d+ holds link 8 as [0-9a-f]{64}; the export has [0-9a-f]{64}$/m),
    });
  });

  it('fails a proof whose anchor was re-signed with another key, or whose path was altered', async () => {
    const chain = (await get(`/api/balances/chain/?user_id=${alice.id}&limit=1000`, service)).json();
    const proof = (await get(`/api/balances/proof/?user_id=${alice.id}`, alice)).json();
    const forged = { ...proof, anchor: { ...proof.anchor, users: 3 } };
    expect(await check(chain, forged)).toEqual({
      code: 1,
      output: expect.stringContaining('the signature does not verify'),
    });
    const moved = { ...proof, anchor: { ...proof.anchor, path: [{ side: 'left', hash: '00'.repeat(32) }] } };
    expect(await check(chain, moved)).toEqual({ code: 1, output: expect.stringContaining('the path leads to') });
  });

  it("refuses users another's proof and every user the export, and answers bad input with 400", async () => {
    expect((await get(`/api/balances/proof/?user_id=${alice.id}`, bob)).statusCode).toBe(403);
    expect((await get(`/api/balances/chain/?user_id=${alice.id}`, alice)).statusCode).toBe(403);
    expect((await get('/api/balances/proof/?user_id=987654321', service)).statusCode).toBe(404);
    for (const query of ['after_version=-1', 'after_version=1e3', 'limit=0', 'limit=1001', "after_version=1'--"])
      expect((await get(`/api/balances/chain/?user_id=${alice.id}&${query}`, service)).statusCode, query).toBe(400);
  });

  it('answers a user in no anchor yet with their head and no anchor', async () => {
    const carol = await createUser(db, config);
    await apply({ id: 'dep-c', type: 'deposit', user_id: carol.id, amount: '1.00' });
    const proof = (await get(`/api/balances/proof/?user_id=${carol.id}`, carol)).json();
    expect(proof).toEqual({
      user_id: carol.id,
      head: { version: '1', hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      anchor: null,
    });
  });
});
