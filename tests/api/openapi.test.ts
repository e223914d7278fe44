import { describe, expect, it } from 'vitest';
import { openApiDocument, OPERATIONS } from '../../src/api/openapi.ts';
import { createHttpSchemas } from '../../src/api/schemas.ts';
import { appWithoutKafka } from '../helpers/gateway.ts';
import { loadConfig } from '../../src/config.ts';

const schemas = createHttpSchemas({
  amountMinorMax: 100_000_000_000,
  pageItemsMax: 100,
  statementRowsMax: 1_000,
  transferRecipientsMax: 20,
  bulkCommandsMax: 1_000,
});

describe('the OpenAPI document', () => {
  const document = openApiDocument(schemas) as {
    paths: Record<string, Record<string, { requestBody?: unknown; parameters: Array<{ name: string }> }>>;
  };

  it('documents only routes the app really registers', async () => {
    const app = appWithoutKafka(loadConfig({ ALLOW_DEV_SECRETS: 'true' }), { pool: null } as never);
    await app.ready();
    for (const op of OPERATIONS) {
      const url = op.path.replace('{id}', 'x');
      expect(
        app.hasRoute({
          method: op.method.toUpperCase() as 'GET' | 'POST',
          url: op.path.includes('{id}') ? '/api/commands/:id' : url,
        }),
        op.path,
      ).toBe(true);
    }
    await app.close();
  });

  it('takes request bodies from the zod schemas the routes validate with', () => {
    const body = document.paths['/api/transfer_funds/']!.post!.requestBody as {
      content: {
        'application/json': { schema: { required: string[]; properties: Record<string, { description?: string }> } };
      };
    };
    const schema = body.content['application/json'].schema;
    // One recipient (recipient_id and amount) or a split payment (recipients): neither is required alone.
    expect(schema.required).toEqual(['sender_id']);
    expect(Object.keys(schema.properties)).toEqual(['sender_id', 'recipient_id', 'amount', 'recipients', 'comment']);
    expect(schema.properties.amount?.description).toMatch(/2 decimals/);
  });

  it('lists the query parameters of the reads', () => {
    expect(document.paths['/api/transactions/']!.get!.parameters.map((p) => p.name)).toEqual([
      'user_id',
      'sort',
      'order',
      'limit',
      'cursor',
    ]);
  });
});
