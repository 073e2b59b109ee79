import { describe, expect, it } from "vitest";
import { choosePrune } from "../../server/engine/image-autoclean.js";
import type { LocalImage } from "../../server/engine/swarm-port.js";

const id = (n: number) => `sha256:${String(n).padStart(64, "0")}`;
const image = (n: number, ...references: string[]): LocalImage => ({ id: id(n), references, created: 1_700_000_000 + n });

describe("choosePrune (IMAGE_AUTOCLEAN_LIMIT)", () => {
  it("counts numerically: of ten images it keeps the five newest (Shepherd compared '10' > '5' as strings and kept all)", () => {
    const images = Array.from({ length: 10 }, (_, i) => image(i + 1, `127.0.0.1:5000/app:v${i + 1}`));
    const choice = choosePrune(images, "127.0.0.1:5000/app", 5, new Set());
    expect(choice.remove.map((r) => r.id)).toEqual([5, 4, 3, 2, 1].map(id));
  });

  it("matches the whole repository name, registry port included (Shepherd cut it at the first colon)", () => {
    const images = [
      image(3, "127.0.0.1:5000/app:v3"),
      image(2, "127.0.0.1:5000/app@sha256:" + "b".repeat(64)),
      image(1, "127.0.0.1:5000/app:v1"),
      image(9, "127.0.0.1:5001/app:v9"),
      image(8, "127.0.0.1:5000/app-other:v8"),
      image(7, "app:v7"),
    ];
    const choice = choosePrune(images, "127.0.0.1:5000/app", 1, new Set());
    expect(choice.remove).toEqual([
      { id: id(2), references: ["127.0.0.1:5000/app@sha256:" + "b".repeat(64)] },
      { id: id(1), references: ["127.0.0.1:5000/app:v1"] },
    ]);
  });

  it("keeps images a container uses, running or stopped, and removes only this repository's tags of a shared image", () => {
    const images = [image(3, "nginx:1.27"), image(2, "nginx:1.26", "mirror.example/nginx:1.26"), image(1, "nginx:1.25")];
    const choice = choosePrune(images, "nginx", 1, new Set([id(1)]));
    expect(choice).toEqual({ remove: [{ id: id(2), references: ["nginx:1.26"] }], inUse: [id(1)] });
  });

  it("counts an image listed twice once", () => {
    const images = [image(2, "nginx:a"), image(2, "nginx:b"), image(1, "nginx:c")];
    expect(choosePrune(images, "docker.io/library/nginx", 2, new Set()).remove).toEqual([]);
  });
});
