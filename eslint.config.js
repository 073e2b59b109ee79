// The walls between the server's layers (ARCHITECTURE.md), as lint rules:
// who may import what. Formatting is Prettier's job, types tsc's.
import tseslint from "typescript-eslint";

/** Libraries that belong to one folder of server/. */
const OWNED = [
  { modules: ["dockerode", "docker-modem"], home: "server/engine/docker*.ts", files: ["server/engine/docker*.ts", "server/types/docker-*.d.ts"] },
  { modules: ["drizzle-orm", "better-sqlite3"], home: "server/store/", files: ["server/store/**/*.ts"] },
  { modules: ["jose"], home: "server/auth/", files: ["server/auth/**/*.ts"] },
];

/** no-restricted-imports for a file that may use the libraries of `own` (a list of OWNED entries). */
function walls(own = []) {
  const barred = OWNED.filter((o) => !own.includes(o));
  return [
    "error",
    {
      paths: barred.flatMap((o) => o.modules.map((name) => ({ name, message: `${name} is imported only in ${o.home}` }))),
      patterns: barred.map((o) => ({ group: o.modules.map((m) => `${m}/*`), message: `imported only in ${o.home}` })),
    },
  ];
}

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "migrations/**", "bench/results/**"] },
  { files: ["**/*.ts", "**/*.tsx"], languageOptions: { parser: tseslint.parser } },
  { files: ["server/**/*.ts", "server/**/*.tsx"], rules: { "no-restricted-imports": walls() } },
  ...OWNED.map((o) => ({ files: o.files, rules: { "no-restricted-imports": walls([o]) } })),
  {
    // The domain is pure rules: nothing from the rest of the server, no I/O library.
    files: ["server/domain/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: OWNED.flatMap((o) => o.modules).map((name) => ({ name, message: "server/domain/ does no I/O" })),
          patterns: [
            { group: ["../*"], message: "server/domain/ imports nothing from the rest of the server" },
            { group: ["hono", "hono/*", "pino", "prom-client", "zod", "dockerode", "drizzle-orm/*"], message: "server/domain/ does no I/O" },
          ],
        },
      ],
    },
  },
);
