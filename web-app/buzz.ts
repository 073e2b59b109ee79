/**
 * The buzz phrase generator of the original Flask app, kept word for word:
 * an adjective, a first buzz term, an adverb, a verb and a second, different
 * buzz term, title-cased ("Modern Continuous Deployment Remarkably Boosts Devops").
 */

export const buzzTerms = ["continuous testing", "continuous integration", "continuous deployment", "continuous improvement", "devops"] as const;
export const adjectives = ["complete", "modern", "self-service", "integrated", "end-to-end"] as const;
export const adverbs = ["remarkably", "enormously", "substantially", "significantly", "seriously"] as const;
export const verbs = ["accelerates", "improves", "enhances", "revamps", "boosts"] as const;

/** A number in [0, 1), like Math.random; injected so tests can pin the outcome. */
export type Random = () => number;

/**
 * Picks one word, or `n` distinct words without replacement (Python's
 * `random.sample`), so the two buzz terms of a phrase never repeat.
 */
export function sample<T>(words: readonly T[], n?: 1, random?: Random): T;
export function sample<T>(words: readonly T[], n: number, random?: Random): T[];
export function sample<T>(words: readonly T[], n = 1, random: Random = Math.random): T | T[] {
  if (!Number.isInteger(n) || n < 1 || n > words.length) {
    throw new RangeError(`cannot sample ${n} of ${words.length} words`);
  }
  // A partial Fisher-Yates shuffle: the first n slots end up a uniform sample.
  const pool = [...words];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const picked = pool.slice(0, n);
  return n === 1 ? picked[0]! : picked;
}

/** Python's str.title(): every run of letters starts upper case, the rest lower case. */
function titleCase(text: string): string {
  return text.toLowerCase().replace(/(^|[^a-z])([a-z])/g, (_, before: string, letter: string) => before + letter.toUpperCase());
}

export function generateBuzz(random: Random = Math.random): string {
  const [first, second] = sample(buzzTerms, 2, random);
  const words = [sample(adjectives, 1, random), first, sample(adverbs, 1, random), sample(verbs, 1, random), second];
  return titleCase(words.join(" "));
}
