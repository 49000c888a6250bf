/**
 * The normal-distribution helpers of Optuna's TPE (`samplers/_tpe/_erf.py`, `_truncnorm.py`;
 * spec §3.6), ported operation for operation so that candidates and scores match Optuna's to the
 * last bits: fdlibm `erf`/`erfc` (JS has no `Math.erf`), `log Φ` with its asymptotic series,
 * the stable log of a Gaussian mass, and the truncated-normal inverse CDF by bisection.
 * @module
 */

const ERX = 8.45062911510467529297e-01;
const EFX = 1.28379167095512586316e-01;
const EFX8 = 1.02703333676410069053e00;
const PP = [
  1.28379167095512558561e-01,
  -3.25042107247001499370e-01,
  -2.84817495755985104766e-02,
  -5.77027029648944159157e-03,
  -2.37630166566501626084e-05,
];
const QQ = [
  1,
  3.97917223959155352819e-01,
  6.50222499887672944485e-02,
  5.08130628187576562776e-03,
  1.32494738004321644526e-04,
  -3.96022827877536812320e-06,
];
const PA = [
  -2.36211856075265944077e-03,
  4.14856118683748331666e-01,
  -3.72207876035701323847e-01,
  3.18346619901161753674e-01,
  -1.10894694282396677476e-01,
  3.54783043256182359371e-02,
  -2.16637559486879084300e-03,
];
const QA = [
  1,
  1.06420880400844228286e-01,
  5.40397917702171048937e-01,
  7.18286544141962662868e-02,
  1.26171219808761642112e-01,
  1.36370839120290507362e-02,
  1.19844998467991074170e-02,
];
const RA = [
  -9.86494403484714822705e-03,
  -6.93858572707181764372e-01,
  -1.05586262253232909814e01,
  -6.23753324503260060396e01,
  -1.62396669462573470355e02,
  -1.84605092906711035994e02,
  -8.12874355063065934246e01,
  -9.81432934416914548592e00,
];
const SA = [
  1,
  1.96512716674392571292e01,
  1.37657754143519042600e02,
  4.34565877475229228821e02,
  6.45387271733267880336e02,
  4.29008140027567833386e02,
  1.08635005541779435134e02,
  6.57024977031928170135e00,
  -6.04244152148580987438e-02,
];
const RB = [
  -9.86494292470009928597e-03,
  -7.99283237680523006574e-01,
  -1.77579549177547519889e01,
  -1.60636384855821916062e02,
  -6.37566443368389627722e02,
  -1.02509513161107724954e03,
  -4.83519191608651397019e02,
];
const SB = [
  1,
  3.03380607434824582924e01,
  3.25792512996573918826e02,
  1.53672958608443695994e03,
  3.19985821950859553908e03,
  2.55305040643316442583e03,
  4.74528541206955367215e02,
  -2.24409524465858183362e01,
];

/** Horner evaluation c0 + s·(c1 + s·(…)), in the nesting order fdlibm uses. */
function poly(c: number[], s: number): number {
  let r = c[c.length - 1]!;
  for (let k = c.length - 2; k >= 0; k--) r = c[k]! + s * r;
  return r;
}

const view = new DataView(new ArrayBuffer(8));
/** fdlibm `SET_LOW_WORD(z, 0)`: z with the low 32 bits of its mantissa cleared. */
function clearLowWord(x: number): number {
  view.setFloat64(0, x);
  view.setUint32(4, 0);
  return view.getFloat64(0);
}

/** The high 32 bits of a double, which fdlibm compares its thresholds against. */
function highWord(x: number): number {
  view.setFloat64(0, x);
  return view.getUint32(0);
}

/** exp(−x² − 0.5625 + R/S) split as fdlibm does to keep precision. */
function tailExp(x: number, rs: number): number {
  const z = clearLowWord(x);
  return Math.exp(-z * z - 0.5625) * Math.exp((z - x) * (z + x) + rs);
}

/** fdlibm `erf` (what CPython's `math.erf` computes through libm). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const sign = x < 0 ? -1 : 1;
  if (a < 0.84375) {
    if (a < 2 ** -28) return a < 2 ** -1022 ? 0.125 * (8 * x + EFX8 * x) : x + EFX * x;
    const z = x * x;
    return x + x * (poly(PP, z) / poly(QQ, z));
  }
  if (a < 1.25) {
    const s = a - 1;
    return sign * (ERX + poly(PA, s) / poly(QA, s));
  }
  if (a >= 6) return sign;
  const s = 1 / (a * a);
  const rs = highWord(a) < 0x4006db6e ? poly(RA, s) / poly(SA, s) : poly(RB, s) / poly(SB, s);
  return sign * (1 - tailExp(a, rs) / a);
}

/** fdlibm `erfc` (CPython's `math.erfc`). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a < 0.84375) {
    if (a < 2 ** -56) return 1 - x;
    const z = x * x;
    const y = poly(PP, z) / poly(QQ, z);
    if (x < 0.25) return 1 - (x + x * y);
    return 0.5 - (x * y + (x - 0.5));
  }
  if (a < 1.25) {
    const s = a - 1;
    const pq = poly(PA, s) / poly(QA, s);
    return x >= 0 ? 1 - ERX - pq : 1 + (ERX + pq);
  }
  if (a < 28) {
    if (x < -6) return 2;
    const s = 1 / (a * a);
    const rs = highWord(a) < 0x4006db6d ? poly(RA, s) / poly(SA, s) : poly(RB, s) / poly(SB, s);
    const r = tailExp(a, rs);
    return x > 0 ? r / a : 2 - r / a;
  }
  return x > 0 ? 0 : 2;
}

/**
 * Optuna's vectorised `_erf.erf`, which skips fdlibm's low-word split; used only where Optuna
 * uses it (`_ndtr`, the central case of the Gaussian mass).
 */
export function erfOptuna(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const sign = Math.sign(x);
  if (a < 2 ** -28) return x + EFX * x;
  if (a < 0.84375) {
    const z = x * x;
    return x + x * (poly(PP, z) / poly(QQ, z));
  }
  if (a < 1.25) return (ERX + poly(PA, a - 1) / poly(QA, a - 1)) * sign;
  if (a >= 6) return sign;
  const s = 1 / (a * a);
  const rs = a < 1 / 0.35 ? poly(RA, s) / poly(SA, s) : poly(RB, s) / poly(SB, s);
  return (1 - (Math.exp(-a * a - 0.5625) * Math.exp(rs)) / a) * sign;
}

const SQRT2 = 2 ** 0.5;
const INV_SQRT2 = 1 / SQRT2;
const LOG_SQRT_2PI = Math.log(Math.sqrt(2 * Math.PI));

/** Φ(a), the standard normal CDF, with Optuna's three-branch erf/erfc choice. */
export function ndtr(a: number): number {
  const x = a / SQRT2;
  if (x < -INV_SQRT2) return 0.5 * erfc(-x);
  if (x < INV_SQRT2) return 0.5 + 0.5 * erf(x);
  return 1 - 0.5 * erfc(x);
}

function ndtrVec(a: number): number {
  return 0.5 + 0.5 * erfOptuna(a / SQRT2);
}

/** log Φ(a), accurate far into both tails. */
export function logNdtr(a: number): number {
  if (a > 6) return -ndtr(-a);
  if (a > -20) return Math.log(ndtr(a));
  const logLhs = -0.5 * a ** 2 - Math.log(-a) - 0.5 * Math.log(2 * Math.PI);
  let last = 0;
  let rhs = 1;
  let numerator = 1;
  let denomFactor = 1;
  const denomCons = 1 / a ** 2;
  let sign = 1;
  let i = 0;
  while (Math.abs(last - rhs) > Number.EPSILON) {
    i++;
    last = rhs;
    sign = -sign;
    denomFactor *= denomCons;
    numerator *= 2 * i - 1;
    rhs += sign * numerator * denomFactor;
  }
  return logLhs + Math.log(rhs);
}

/** numpy's `logaddexp`. */
export function logAddExp(x: number, y: number): number {
  if (x === y) return x + Math.LN2;
  const d = x - y;
  if (d > 0) return x + Math.log1p(Math.exp(-d));
  if (d <= 0) return y + Math.log1p(Math.exp(d));
  return NaN;
}

function logDiff(logP: number, logQ: number): number {
  return logP + Math.log1p(-Math.exp(logQ - logP));
}

/** log(Φ(b) − Φ(a)) for a ≤ b, computed stably in each tail (spec §3.6 `log Z`). */
export function logGaussMass(a: number, b: number): number {
  if (b <= 0) return logDiff(logNdtr(b), logNdtr(a));
  if (a > 0) return logDiff(logNdtr(-a), logNdtr(-b));
  return Math.log1p(-ndtrVec(a) - ndtrVec(-b));
}

/** Inverse of log Φ by Optuna's 100 bisection steps on [−100, 100]. */
function ndtriExp(y: number): number {
  let a = -100;
  let b = 100;
  if (logNdtr(a) > y) [a, b] = [b, a];
  let m = 0;
  for (let k = 0; k < 100; k++) {
    m = (a + b) / 2;
    if (logNdtr(m) < y) a = m;
    else b = m;
  }
  return m;
}

/** Inverse CDF of the standard normal truncated to [a, b], at probability q. */
export function truncnormPpf(q: number, a: number, b: number): number {
  if (a === b) return NaN;
  if (q === 0) return a;
  if (q === 1) return b;
  if (a < 0) return ndtriExp(logAddExp(logNdtr(a), Math.log(q) + logGaussMass(a, b)));
  return -ndtriExp(logAddExp(logNdtr(-b), Math.log1p(-q) + logGaussMass(a, b)));
}

/**
 * log density at x of N(loc, scale²) truncated to [loc + a·scale, loc + b·scale]. Optuna ≤ 3.4
 * omits the −log(scale) term (`withLogScale` false); the bug was fixed in 3.5 (spec §3.8).
 */
export function truncnormLogPdf(
  x: number,
  a: number,
  b: number,
  loc: number,
  scale: number,
  withLogScale: boolean,
): number {
  if (a === b) return NaN;
  const z = (x - loc) / scale;
  if (z < a || z > b) return -Infinity;
  const out = -(z ** 2) / 2 - LOG_SQRT_2PI - logGaussMass(a, b);
  return withLogScale ? out - Math.log(scale) : out;
}
