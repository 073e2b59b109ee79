import nunjucks from "nunjucks";

export type Render = (template: string, context: Record<string, unknown>) => string;

/**
 * Nunjucks is a port of Jinja2, so the templates keep the original app's
 * `{% extends "layout.html" %}` / `{% block %}` structure. Autoescape is on
 * because `/hello` echoes a query parameter; throwOnUndefined turns a
 * misspelt variable into an error in the tests instead of an empty string.
 */
export function createRenderer(templatesDir: string): Render {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(templatesDir, { noCache: false }), {
    autoescape: true,
    throwOnUndefined: true,
  });
  return (template, context) => env.render(template, context);
}
