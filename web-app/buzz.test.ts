import { describe, expect, it } from "vitest";
import { adjectives, adverbs, buzzTerms, generateBuzz, sample, verbs } from "./buzz.js";

const words = ["foo", "bar", "foobar"];

/** A random source that replays the given values, to pin which words are drawn. */
const replay = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe("sample", () => {
  it("returns one word of the list when asked for one", () => {
    for (let i = 0; i < 50; i++) expect(words).toContain(sample(words));
  });

  it("returns the requested number of distinct words of the list", () => {
    for (let i = 0; i < 50; i++) {
      const picked = sample(words, 2);
      expect(picked).toHaveLength(2);
      for (const w of picked) expect(words).toContain(w);
      expect(picked[0]).not.toBe(picked[1]);
    }
  });

  it("never repeats a word even when the random source keeps returning the same value", () => {
    expect(sample(words, 3, replay(0)).sort()).toEqual([...words].sort());
  });

  it("refuses to draw more words than the list holds", () => {
    expect(() => sample(words, 4)).toThrow(RangeError);
    expect(() => sample(words, 0)).toThrow(RangeError);
  });
});

describe("generateBuzz", () => {
  it("makes a phrase of at least five words", () => {
    for (let i = 0; i < 50; i++) expect(generateBuzz().split(/\s+/).length).toBeGreaterThanOrEqual(5);
  });

  it("reads adjective, buzz term, adverb, verb, another buzz term, title-cased", () => {
    // 0 picks the first remaining word each time, so both buzz terms come from the front of the list.
    expect(generateBuzz(replay(0))).toBe("Complete Continuous Testing Remarkably Accelerates Continuous Integration");
    const last = 0.999;
    expect(generateBuzz(replay(last))).toBe("End-To-End Devops Seriously Boosts Continuous Testing");
  });

  it("draws only from the original word lists", () => {
    const all = [...adjectives, ...buzzTerms, ...adverbs, ...verbs].join(" ").toLowerCase();
    for (let i = 0; i < 20; i++) {
      for (const word of generateBuzz().toLowerCase().split(" ")) expect(all).toContain(word);
    }
  });
});
