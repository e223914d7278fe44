/**
 * JSON numbers that JSON.parse cannot hold exactly. `10.0000000000000001` parses to 10 and
 * `1e2` to 100, and nothing after the parse can tell: an amount would be taken as 10.00 or
 * 100.00 although the client wrote something else. So the message's source text is checked
 * before it is parsed, on HTTP and on Kafka alike: a number literal with an exponent, with more
 * than two decimals, or with more digits than a double holds exactly, is refused. Amounts are
 * best sent as decimal strings ("10.00"), which are exact at any size.
 */

/**
 * A double holds every integer up to 2^53 - 1 exactly, and any decimal of up to 15 significant
 * digits comes back from it unchanged (its shortest form is that decimal).
 */
const SIGNIFICANT_DIGITS_MAX = 15;
const INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** Digits of Number.MAX_SAFE_INTEGER: a longer integer is refused without being converted. */
const INTEGER_DIGITS_MAX = String(Number.MAX_SAFE_INTEGER).length;
const FRACTION_DIGITS_MAX = 2;
/** The most characters of a refused literal quoted back: a body may hold a million digits. */
const LITERAL_SHOWN_CHARS_MAX = 24;
const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

/** Why a number literal in `text` (JSON) cannot be read exactly, or null when every one can. */
export function inexactNumberProblem(text: string): string | null {
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue;
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (!match) continue; // not JSON: the parser reports it
    const [literal, whole, fraction = '', exponent] = match;
    const shown = shownLiteral(literal);
    if (exponent) return `${shown}: numbers with an exponent are not accepted; write the digits, or a decimal string`;
    if (fraction.length - 1 > FRACTION_DIGITS_MAX)
      return `${shown}: more than ${FRACTION_DIGITS_MAX} decimals; amounts are in hundredths, best sent as a decimal string like "10.00"`;
    const tooLong =
      fraction === ''
        ? whole!.length > INTEGER_DIGITS_MAX || BigInt(whole!) > INTEGER_MAX
        : (whole! + fraction.slice(1)).replace(/^0+/, '').length > SIGNIFICANT_DIGITS_MAX;
    if (tooLong) return `${shown}: more digits than a JSON number holds exactly; send it as a decimal string`;
    i += literal.length - 1;
  }
  return null;
}

/** A literal as a message quotes it: whole when short, else its start and its length. */
function shownLiteral(literal: string): string {
  if (literal.length <= LITERAL_SHOWN_CHARS_MAX) return literal;
  return `${literal.slice(0, LITERAL_SHOWN_CHARS_MAX - 4)}... (${literal.length} characters)`;
}
