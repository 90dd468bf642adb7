import { createHash } from "node:crypto";
import type { AssignmentStatistics, Distribution, ProblemStatistics } from "./statistics.ts";

/**
 * The statistics as one self-contained page: inline CSS, inline SVG histograms, no script, no external asset.
 * Course titles, assignment titles, option ids and feedback come from users and graders, so every text is escaped,
 * and the page is served with a CSP that allows nothing but this one stylesheet (by hash).
 */

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1d2733;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccd}h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #ccd;padding:.2rem .5rem;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}.problem{display:flex;gap:2rem;flex-wrap:wrap;align-items:flex-start}
.muted{color:#5b6673}svg{background:#f6f7fb}`;

/** For the Content-Security-Policy: the page's only style is this exact stylesheet. */
export const STATISTICS_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash("sha256").update(CSS).digest("base64")}'`,
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const num = (x: number | null) => (x === null ? "–" : String(x));

/** Bars as SVG rectangles with presentation attributes (a style attribute would need 'unsafe-inline'). */
function histogramSvg(d: Distribution, label: string): string {
  const w = 300;
  const h = 120;
  const bar = w / d.histogram.length;
  const top = Math.max(1, ...d.histogram.map((b) => b.count));
  const bars = d.histogram
    .map((b, i) => {
      const bh = Math.round((b.count / top) * (h - 30));
      const x = Math.round(i * bar);
      return (
        `<rect x="${x + 1}" y="${h - 15 - bh}" width="${Math.round(bar) - 2}" height="${bh}" fill="#4a6fd8">` +
        `<title>${escapeHtml(`${b.from}–${b.to}: ${b.count}`)}</title></rect>` +
        (b.count ? `<text x="${x + bar / 2}" y="${h - 18 - bh}" font-size="9" text-anchor="middle">${b.count}</text>` : "")
      );
    })
    .join("");
  const axis = `<text x="0" y="${h - 3}" font-size="9">0</text><text x="${w}" y="${h - 3}" font-size="9" text-anchor="end">${escapeHtml(
    num(d.histogram.at(-1)?.to ?? 0),
  )}</text>`;
  return `<svg role="img" aria-label="${escapeHtml(label)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg">${bars}${axis}</svg>`;
}

const row = (k: string, v: string) => `<tr><th>${escapeHtml(k)}</th><td class="num">${escapeHtml(v)}</td></tr>`;

function counts(title: string, head: string, items: { key: string; count: number }[]): string {
  if (!items.length) return "";
  const rows = items.map((i) => `<tr><td>${escapeHtml(i.key)}</td><td class="num">${i.count}</td></tr>`).join("");
  return `<table><caption>${escapeHtml(title)}</caption><tr><th>${escapeHtml(head)}</th><th>count</th></tr>${rows}</table>`;
}

function problemSection(p: ProblemStatistics): string {
  const summary = [
    row("students with a score", String(p.n)),
    row("mean", `${num(p.mean)} / ${p.maxScore}`),
    row("median", num(p.median)),
    row("attempts (mean)", num(p.attempts.mean)),
    row("attempts (max)", String(p.attempts.max)),
  ].join("");
  return (
    `<section><h3>${escapeHtml(p.title)} <span class="muted">(${escapeHtml(p.problem)}, ${escapeHtml(p.type)})</span></h3>` +
    `<div class="problem"><table>${summary}</table>${histogramSvg(p, `score histogram of ${p.problem}`)}` +
    counts(
      "Most common choices in answers below full marks",
      "option",
      p.wrongChoices.map((c) => ({ key: c.option, count: c.count })),
    ) +
    counts(
      "Most common feedback below full marks",
      "message",
      p.feedback.map((c) => ({ key: c.message, count: c.count })),
    ) +
    `</div></section>`
  );
}

function assignmentSection(a: AssignmentStatistics): string {
  const t = a.total;
  return (
    `<h2>${escapeHtml(a.title)}</h2><div class="problem"><table>${row("students with a score", String(t.n))}` +
    `${row("mean total", `${num(t.mean)} / ${a.maxTotal}`)}${row("median total", num(t.median))}</table>` +
    `${histogramSvg(t, `total histogram of ${a.title}`)}</div>${a.problems.map(problemSection).join("")}`
  );
}

export function statisticsHtml(stats: {
  course: { slug: string; title: string };
  generatedAt: Date;
  students: number;
  assignments: AssignmentStatistics[];
}): string {
  const title = `Statistics: ${stats.course.title}`;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>` +
    `<h1>${escapeHtml(title)}</h1><p class="muted">${escapeHtml(stats.course.slug)} · ${stats.students} students · ` +
    `generated ${escapeHtml(stats.generatedAt.toISOString())}</p>` +
    (stats.assignments.length ? stats.assignments.map(assignmentSection).join("") : "<p>No assignments.</p>") +
    `</body></html>\n`
  );
}
