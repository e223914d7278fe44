/**
 * The walkthrough: every example of the README and docs/walkthrough.md, in the order a new
 * user runs them, on one fresh database against `npm start`. `npm run walkthrough -- --write`
 * runs them and writes each section with its real output; the walkthrough test runs them again
 * and holds every shown answer to the new one (engine.ts says what may differ).
 */
import type { Section } from './engine.ts';

const accounts: Section = {
  id: 'accounts',
  file: 'README.md',
  steps: [
    {
      say: 'five accounts; each command prints the new account id (the password comes from standard input)',
      run: `printf '%s\\n' 'alice-password-1' | npm run -s users -- add alice
printf '%s\\n' 'bob-password-22' | npm run -s users -- add bob
printf '%s\\n' 'carol-password-3' | npm run -s users -- add carol
printf '%s\\n' 'shop-password-12' | npm run -s users -- add shop --role service --services 101
printf '%s\\n' 'root-password-123' | npm run -s users -- add root --role admin`,
    },
    {
      say: 'api: curl, then the HTTP status on a line of its own; token: sign in, print the access token',
      run: `B=http://127.0.0.1:\${PORT:-8000}; JSON='content-type: application/json'
api() { curl -s -w '\\n(%{http_code})\\n' "$@"; }
token() { curl -s -X POST $B/api/token/ -H "$JSON" -d "{\\"username\\": \\"$1\\", \\"password\\": \\"$2\\"}" | node -pe 'JSON.parse(require("fs").readFileSync(0)).access'; }
ALICE="authorization: Bearer $(token alice alice-password-1)"
BOB="authorization: Bearer $(token bob bob-password-22)"
SHOP="authorization: Bearer $(token shop shop-password-12)"
ADMIN="authorization: Bearer $(token root root-password-123)"`,
    },
  ],
};

const basics: Section = {
  id: 'basics',
  file: 'README.md',
  steps: [
    {
      say: 'the shop deposits for alice',
      run: `api -X POST $B/api/add_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: topup-1' \\
  -d '{"user_id": 1, "amount": "100.00", "comment": "top-up"}'`,
    },
    {
      say: 'alice cannot create money',
      run: `api -X POST $B/api/add_funds/ -H "$ALICE" -H "$JSON" -H 'idempotency-key: free-money' -d '{"user_id": 1, "amount": "1000000.00"}'`,
    },
    {
      say: 'the shop withdraws 5.00, then reserves 30.00 for order 1001',
      run: `api -X POST $B/api/withdraw_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: payout-1' -d '{"user_id": 1, "amount": "5.00"}'
api -X POST $B/api/reserve_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1001-r' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1001, "amount": "30.00"}'`,
      show: 'status',
    },
    {
      say: 'and recognises 25.00 of it as revenue: the other 5.00 goes back to alice',
      run: `api -X POST $B/api/deduct_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1001-c' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1001, "amount": "25.00"}'`,
    },
    {
      say: 'a reservation cancelled',
      run: `api -X POST $B/api/reserve_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1002-r' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1002, "amount": "10.00"}'
api -X POST $B/api/cancel_reservation/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1002-x' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1002}'`,
      show: 'status',
    },
    {
      say: 'the shop is bound to service 101: orders of other services are refused',
      run: `api -X POST $B/api/reserve_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-9-r' \\
  -d '{"user_id": 1, "service_id": 202, "order_id": 9, "amount": "1.00"}'`,
    },
    {
      say: 'an instant before the transfer, for later',
      run: 'AT=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)',
    },
    {
      say: 'alice transfers 20.00 to bob',
      run: `api -X POST $B/api/transfer_funds/ -H "$ALICE" -H "$JSON" -H 'idempotency-key: rent-1' \\
  -d '{"sender_id": 1, "recipient_id": 2, "amount": "20.00", "comment": "rent"}'`,
    },
    {
      say: 'every request that moves money needs an Idempotency-Key: a retry with it never applies twice',
      run: `api -X POST $B/api/transfer_funds/ -H "$ALICE" -H "$JSON" -d '{"sender_id": 1, "recipient_id": 2, "amount": "1.00"}'`,
    },
    {
      say: 'the same key and body again: the first answer, not a second transfer',
      run: `api -X POST $B/api/transfer_funds/ -H "$ALICE" -H "$JSON" -H 'idempotency-key: rent-1' \\
  -d '{"sender_id": 1, "recipient_id": 2, "amount": "20.00", "comment": "rent"}'`,
      show: 'status',
    },
    {
      say: 'balances and history (sorted by amount or date, paginated with next_cursor)',
      run: `api "$B/api/balances/?user_id=1" -H "$ALICE"
api "$B/api/transactions/?user_id=1&sort=amount&order=desc&limit=2" -H "$ALICE"`,
    },
    {
      say: 'bob cannot read alice',
      run: `api "$B/api/balances/?user_id=1" -H "$BOB"`,
    },
    {
      say: 'asynchronous: 202 and a Location at once (Prefer: respond-async), then poll it',
      run: `api -i -X POST $B/api/add_funds/ -H "$SHOP" -H "$JSON" -H 'prefer: respond-async' -H 'idempotency-key: topup-2' \\
  -d '{"user_id": 1, "amount": "1.00"}'`,
      headers: ['location'],
    },
    {
      run: `api $B/api/commands/topup-2 -H "$SHOP"`,
      until: /"status":"applied"/,
    },
    {
      say: 'the monthly accounting report: revenue per service (CSV, or JSON with Accept)',
      run: `api "$B/api/reports/revenue/?month=$(date +%Y-%m)" -H "$SHOP"`,
    },
    {
      say: 'a balance as it was at an instant: before the transfer',
      run: `api "$B/api/balances/?user_id=1&at=$AT" -H "$ALICE"`,
    },
  ],
};

const kafka: Section = {
  id: 'kafka',
  file: 'README.md',
  steps: [
    {
      say: 'a topic of your own for the replies (reply_to may name balance.replies or balance.replies.*)',
      run: 'npm run -s kafka:tools -- topics --create --topic balance.replies.console --partitions 1',
    },
    {
      say: "a deposit keyed by the user's id, with Kafka's console producer",
      run: `echo '1|{"id":"console-1","type":"deposit","user_id":1,"amount":"2.00","reply_to":"balance.replies.console"}' |
  npm run -s kafka:tools -- console-producer --topic balance.commands --property parse.key=true --property 'key.separator=|'`,
    },
    {
      say: 'its reply, with the console consumer',
      run: 'npm run -s kafka:tools -- console-consumer --topic balance.replies.console --from-beginning --max-messages 1 --timeout-ms 60000',
    },
  ],
};

const history: Section = {
  id: 'history',
  file: 'README.md',
  steps: [
    {
      say: 'anchor every history chain now (consumers do it every ANCHOR_INTERVAL_S), with the built-in key npm start uses; then alice asks for her proof',
      run: `export ALLOW_DEV_SECRETS=true
npm run -s anchor
api "$B/api/balances/proof/?user_id=1" -H "$ALICE"`,
    },
    {
      say: 'the shop exports her chain; the checker needs Node, the export, the proof and the published public key, and no code of ours',
      run: `T=$(mktemp -d)
curl -s "$B/api/balances/chain/?user_id=1" -H "$SHOP" > $T/chain.json
curl -s "$B/api/balances/proof/?user_id=1" -H "$ALICE" > $T/proof.json
KEY=$(npm run -s anchor -- --public-key | node -pe 'JSON.parse(require("fs").readFileSync(0)).public_key')
node scripts/verify-export.mjs --chain $T/chain.json --proof $T/proof.json --public-key $KEY`,
    },
    {
      say: 'someone with the database edits a history row: the sums still add up, the chain does not',
      run: `npm run -s sql -- --write "UPDATE transactions SET comment = 'edited' WHERE comment = 'top-up'"
npm run -s verify | grep -v '^ok' | sed 's/ (postgres.*//; s/^ *//'`,
    },
    {
      say: 'put back, the ledger verifies again',
      run: `npm run -s sql -- --write "UPDATE transactions SET comment = 'top-up' WHERE comment = 'edited'"
npm run -s verify | tail -1 | sed 's/ (postgres.*//'; rm -r $T`,
    },
  ],
};

const reconciliation: Section = {
  id: 'reconciliation',
  file: 'README.md',
  steps: [
    {
      say: "the shop deposits for bob what its payment provider collected, naming its service and the provider's payment id",
      run: `api -X POST $B/api/add_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: pay-1001' \\
  -d '{"user_id": 2, "amount": "30.00", "service_id": 101, "external_ref": "pi_1001"}'`,
      show: 'status',
    },
    {
      say: "the provider's webhook again, under another key: refused, nothing credited twice",
      run: `api -X POST $B/api/add_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: pay-1001-retry' \\
  -d '{"user_id": 2, "amount": "30.00", "service_id": 101, "external_ref": "pi_1001"}'`,
    },
    {
      say: "the provider's statement: pi_1001, and a payment the ledger never received",
      run: `T=$(mktemp -d); NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '%s\\n' 'payment_id,gross,currency,time,direction' "pi_1001,30.00,RUB,$NOW,deposit" \\
  "pi_1002,12.00,RUB,$NOW,deposit" > $T/statement.csv
npm run -s reconcile-statement -- --file $T/statement.csv --service 101 --map reference=payment_id,amount=gross`,
    },
    {
      say: 'the same file over HTTP answers the same run; its results as CSV for a spreadsheet',
      run: `RUN=$(curl -s -X POST "$B/api/reconciliations/?service_id=101&map=reference=payment_id,amount=gross" \\
  -H "$ADMIN" -H 'content-type: text/csv' --data-binary @$T/statement.csv | node -pe 'JSON.parse(require("fs").readFileSync(0)).reconciliation_id')
api "$B/api/reconciliations/$RUN?format=csv" -H "$ADMIN"; rm -r $T`,
    },
  ],
};

const statements: Section = {
  id: 'statements',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'a balance at an instant is ISO 8601 with an offset (a + is %2B in a URL), and not in the future',
      run: `api "$B/api/balances/?user_id=1&at=2026-01-01T00:00:00%2B03:00" -H "$ALICE"
api "$B/api/balances/?user_id=1&at=2099-01-01T00:00:00Z" -H "$ALICE"`,
    },
    {
      say: 'a monthly statement: the opening balance, each row with the balance after it, the closing balance',
      run: `api "$B/api/statements/?user_id=1&month=$(date +%Y-%m)&limit=2" -H "$ALICE"`,
    },
    {
      say: 'the whole month as CSV (or Accept: text/csv)',
      run: `api "$B/api/statements/?user_id=1&month=$(date +%Y-%m)&format=csv" -H "$ALICE"`,
      lines: { head: 5, tail: 3 },
    },
  ],
};

const holds: Section = {
  id: 'holds',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'a hold that expires by itself after expires_in_s (1 s to 31 days)',
      run: `api -X POST $B/api/reserve_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1004-r' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1004, "amount": "15.00", "expires_in_s": 2}'`,
      show: 'status',
    },
    {
      say: 'a few seconds later, an expire row gives the money back',
      run: `sleep 3; api "$B/api/transactions/?user_id=1&limit=1" -H "$SHOP"`,
      until: /"transaction_type":"expire"/,
    },
    {
      say: 'and the order can no longer be captured',
      run: `api -X POST $B/api/deduct_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1004-c' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1004, "amount": "15.00"}'`,
    },
  ],
};

const alerts: Section = {
  id: 'alerts',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'alice asks to be told when her available balance drops below 40.00',
      run: `api -X POST $B/api/balance_alerts/ -H "$ALICE" -H "$JSON" -H 'idempotency-key: low-balance' \\
  -d '{"user_id": 1, "below": "40.00"}'`,
    },
    {
      say: 'a payout takes her below it',
      run: `api -X POST $B/api/withdraw_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: payout-2' -d '{"user_id": 1, "amount": "15.00"}'`,
      show: 'status',
    },
    {
      say: 'the alert fired once (past: the balance is beyond it), as a threshold_crossed event',
      run: `api "$B/api/balance_alerts/?user_id=1" -H "$ALICE"`,
    },
    {
      say: 'every applied command is an event on "balance.events", and a fired alert one more; the example\nsubscriber prints each once, in each user\'s order (users interleave), for EXAMPLE_SECONDS',
      run: 'EXAMPLE_SECONDS=6 npm run -s example:events',
      anyOrder: true,
    },
    {
      say: 'the alert event itself, as any Kafka client reads it',
      run: `npm run -s kafka:tools -- console-consumer --topic balance.events --from-beginning --timeout-ms 5000 2>/dev/null |
  grep threshold_crossed`,
    },
  ],
};

const refunds: Section = {
  id: 'refunds',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'a partial refund of order 1001 (captured 25.00): from the revenue back to alice',
      run: `api -X POST $B/api/refund_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1001-refund-1' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1001, "amount": "10.00", "comment": "one item returned"}'`,
    },
    {
      say: 'refunds of an order add up to at most what was captured',
      run: `api -X POST $B/api/refund_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: order-1001-refund-2' \\
  -d '{"user_id": 1, "service_id": 101, "order_id": 1001, "amount": "20.00"}'`,
    },
    {
      say: 'the report nets refunds against captures',
      run: `api "$B/api/reports/revenue/?month=$(date +%Y-%m)" -H "$SHOP"`,
    },
    {
      say: 'only an admin freezes an account; money can then arrive but not leave',
      run: `api -X POST $B/api/accounts/freeze/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: f0' -d '{"user_id": 1, "reason": "x"}'
api -X POST $B/api/accounts/freeze/ -H "$ADMIN" -H "$JSON" -H 'idempotency-key: freeze-1-2211' \\
  -d '{"user_id": 1, "reason": "chargeback 2211"}'`,
    },
    {
      run: `api -X POST $B/api/withdraw_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: payout-9' -d '{"user_id": 1, "amount": "5.00"}'`,
    },
    {
      run: `api -X POST $B/api/add_funds/ -H "$SHOP" -H "$JSON" -H 'idempotency-key: topup-9' -d '{"user_id": 1, "amount": "5.00"}'`,
      show: 'status',
    },
    {
      say: 'services and admins see why; the user sees that it is frozen, not why',
      run: `api "$B/api/balances/?user_id=1" -H "$SHOP"
api "$B/api/balances/?user_id=1" -H "$ALICE"`,
    },
    {
      run: `api -X POST $B/api/accounts/unfreeze/ -H "$ADMIN" -H "$JSON" -H 'idempotency-key: unfreeze-1-2211' \\
  -d '{"user_id": 1, "reason": "cleared"}'`,
      show: 'status',
    },
  ],
};

const splits: Section = {
  id: 'split-payments',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'alice pays 30.00: 27.00 to bob, 3.00 to carol (the platform), as one decision',
      run: `api -X POST $B/api/transfer_funds/ -H "$ALICE" -H "$JSON" -H 'idempotency-key: order-77-pay' \\
  -d '{"sender_id": 1, "recipients": [{"recipient_id": 2, "amount": "27.00"},
       {"recipient_id": 3, "amount": "3.00", "comment": "platform fee"}], "comment": "order 77"}'`,
    },
    {
      say: "bob's balance: the leg shows at once as incoming, and as available once his partition settles it",
      run: `api "$B/api/balances/?user_id=2" -H "$BOB"`,
      until: /"incoming":"0.00"/,
    },
    {
      say: 'a recipient named twice is refused',
      run: `api -X POST $B/api/transfer_funds/ -H "$ALICE" -H "$JSON" -H 'idempotency-key: order-78-pay' \\
  -d '{"sender_id": 1, "recipients": [{"recipient_id": 2, "amount": "1.00"}, {"recipient_id": 2, "amount": "1.00"}]}'`,
    },
  ],
};

const bulk: Section = {
  id: 'bulk',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'four commands in one request: each has its own type, key and result',
      run: `api -X POST $B/api/commands/bulk -H "$SHOP" -H "$JSON" -d '{"commands": [
  {"type": "deposit", "idempotency_key": "payroll-1", "user_id": 2, "amount": "100.00"},
  {"type": "deposit", "idempotency_key": "payroll-2", "user_id": 3, "amount": "-5.00"},
  {"type": "withdraw", "idempotency_key": "payroll-3", "user_id": 2, "amount": "30.00"},
  {"type": "withdraw", "idempotency_key": "payroll-4", "user_id": 3, "amount": "80.00"}]}'`,
    },
    {
      say: 'asynchronous: the status URL at once',
      run: `BATCH=$(api -X POST $B/api/commands/bulk -H "$SHOP" -H "$JSON" -H 'prefer: respond-async' -d '{"commands": [
  {"type": "deposit", "idempotency_key": "payroll-5", "user_id": 3, "amount": "5.00"}]}' | head -1 | node -pe 'JSON.parse(require("fs").readFileSync(0)).status_url')
echo $BATCH`,
    },
    {
      say: 'polled by its sender (or an admin)',
      run: `api $B$BATCH -H "$SHOP"`,
      until: /"status":"applied"/,
    },
  ],
};

const currency: Section = {
  id: 'currency',
  file: 'docs/walkthrough.md',
  steps: [
    {
      say: 'no rate yet',
      run: `api "$B/api/balances/?user_id=1&currency=USD" -H "$ALICE"`,
    },
    {
      say: "an operator sets one (or npm run rates -- fetch reads the Central Bank of Russia's daily file)",
      run: `npm run -s rates -- set USD 0.0108
api "$B/api/balances/?user_id=1&currency=USD" -H "$ALICE"`,
    },
  ],
};

/** Every section, in the order the walkthrough runs them. */
export const SECTIONS: readonly Section[] = [
  accounts,
  basics,
  kafka,
  history,
  reconciliation,
  statements,
  holds,
  alerts,
  refunds,
  splits,
  bulk,
  currency,
];
