// TOTP for the tests (RFC 6238: HMAC-SHA1 over the time step, from the
// secret of an otpauth:// URI), computed with node:crypto independently of
// both servers. Used by two-factor.test.mjs and the passwordless tests that
// need a user with two-factor on.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 (padding and case ignored) to bytes. */
export function base32Decode(text) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/=+$/, "").toUpperCase()) {
    const i = BASE32.indexOf(ch);
    if (i === -1) throw new Error(`not base32: ${JSON.stringify(ch)} in ${JSON.stringify(text)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
      value &= (1 << bits) - 1;
    }
  }
  return Buffer.from(out);
}

/** RFC 4226 HOTP with HMAC-SHA1. */
export function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac("sha1", key).update(msg).digest();
  const offset = h[h.length - 1] & 0x0f;
  const bin = h.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 10 ** digits).padStart(digits, "0");
}

/** How close to the end of a step a code counts as "about to expire". */
const STEP_MARGIN_MS = 3_000;

/** An authenticator app for one otpauth:// URI. */
export class Authenticator {
  constructor(totpURI) {
    const uri = new URL(totpURI);
    assert.equal(uri.protocol, "otpauth:", `totpURI should be otpauth://, got ${totpURI}`);
    assert.equal(uri.host, "totp", `totpURI should be otpauth://totp/..., got ${totpURI}`);
    const secret = uri.searchParams.get("secret");
    assert.match(secret ?? "", /^[A-Z2-7]+=*$/i, `totpURI secret should be base32, got ${totpURI}`);
    const algorithm = uri.searchParams.get("algorithm");
    assert.ok(!algorithm || algorithm.toUpperCase() === "SHA1", `totpURI algorithm ${algorithm}: only SHA1 is expected`);
    this.uri = totpURI;
    this.secret = secret.toUpperCase();
    this.key = base32Decode(secret);
    this.digits = Number(uri.searchParams.get("digits") ?? 6);
    this.period = Number(uri.searchParams.get("period") ?? 30);
    assert.equal(this.digits, 6, `totpURI digits, got ${totpURI}`);
    assert.equal(this.period, 30, `totpURI period, got ${totpURI}`);
    this.lastStep = -Infinity;
  }

  stepAt(ms) {
    return Math.floor(ms / 1000 / this.period);
  }

  codeAt(step) {
    return hotp(this.key, step, this.digits);
  }

  /** The code of `step` steps from now, without marking it used. */
  peek(offset = 0) {
    return this.codeAt(this.stepAt(Date.now()) + offset);
  }

  /**
   * A code both servers accept now and Warden has not seen from this
   * authenticator: the earliest unused step that is still within ±1 step
   * STEP_MARGIN_MS from now. Waits for the next step only when all three are
   * used (no test here needs that).
   */
  async freshCode() {
    for (;;) {
      const now = Date.now();
      const current = this.stepAt(now);
      const soon = this.stepAt(now + STEP_MARGIN_MS);
      const step = Math.max(this.lastStep + 1, soon - 1);
      if (step <= current + 1) {
        this.lastStep = step;
        return this.codeAt(step);
      }
      await sleep((current + 1) * this.period * 1000 - now + 50);
    }
  }

  /** A well-formed code that is not the code of any step near now. */
  wrongCode() {
    const current = this.stepAt(Date.now());
    const near = new Set();
    for (let d = -3; d <= 3; d++) near.add(this.codeAt(current + d));
    let n = Number(this.codeAt(current));
    let code;
    do {
      n = (n + 1) % 10 ** this.digits;
      code = String(n).padStart(this.digits, "0");
    } while (near.has(code));
    return code;
  }
}

