// A strict reader of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), for checking metrics().
// No well-kept parser is installed in this project, so this one follows the format's rules
// and throws, naming the line, on anything they do not allow:
//  - lines end in '\n' (the text too), no '\r';
//  - `# HELP name text` (text escapes only \\ and \n) and `# TYPE name type`, at most one
//    each per family, both before the family's first sample; other `#` lines are comments;
//  - a family's lines form one group; no family appears twice;
//  - samples: name{label="value",...} value [timestamp], names [a-zA-Z_:][a-zA-Z0-9_:]*,
//    label names [a-zA-Z_][a-zA-Z0-9_]* (not `__`-prefixed), label values escape exactly
//    \\, \" and \n, no label twice, no sample twice, values Go-style floats.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

export interface Family {
  name: string;
  help?: string;
  type: MetricType;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]?Inf|NaN)$/;
const TIMESTAMP = /^-?\d+$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

class ParseError extends Error {
  constructor(lineNumber: number, line: string, problem: string) {
    super(`line ${lineNumber}: ${problem}: ${JSON.stringify(line)}`);
  }
}

function unescapeHelp(text: string, fail: (problem: string) => never): string {
  return text.replace(/\\(.?)/g, (_match, next: string) => {
    if (next === '\\') return '\\';
    if (next === 'n') return '\n';
    return fail(`invalid escape \\${next} in HELP text`);
  });
}

/** The family a sample belongs to: its own name, or for histograms/summaries the base name. */
function familyOf(sampleName: string, families: Map<string, Family>): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_count', '_sum']) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      const type = families.get(base)?.type;
      if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket')) return base;
    }
  }
  return sampleName;
}

function parseSample(line: string, fail: (problem: string) => never): Sample {
  let at = 0;
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) fail('a sample must start with a metric name');
  const name = nameMatch[0];
  at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    while (line[at] !== '}') {
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at));
      if (!labelMatch) fail(`a label name was expected at column ${at + 1}`);
      const labelName = labelMatch[0];
      if (labelName.startsWith('__')) fail(`label name ${labelName} is reserved`);
      if (Object.hasOwn(labels, labelName)) fail(`label ${labelName} appears twice`);
      at += labelName.length;
      if (line.slice(at, at + 2) !== '="') fail(`'="' was expected after label ${labelName}`);
      at += 2;
      let value = '';
      for (;;) {
        const char = line[at];
        if (char === undefined) fail(`the value of label ${labelName} is not closed`);
        at++;
        if (char === '"') break;
        if (char === '\\') {
          const next = line[at];
          at++;
          if (next === '\\') value += '\\';
          else if (next === '"') value += '"';
          else if (next === 'n') value += '\n';
          else fail(`invalid escape \\${next ?? ''} in the value of label ${labelName}`);
        } else {
          value += char;
        }
      }
      labels[labelName] = value;
      if (line[at] === ',') at++;
      else if (line[at] !== '}') fail(`',' or '}' was expected after label ${labelName}`);
    }
    at++;
  }
  const rest = line.slice(at);
  const fields = /^ (\S+)(?: (\S+))?$/.exec(rest);
  if (!fields?.[1]) fail('a sample needs " value [timestamp]" after its name and labels');
  if (!FLOAT.test(fields[1])) fail(`${fields[1]} is not a float value`);
  const sample: Sample = { name, labels, value: fields[1].endsWith('Inf') ? (fields[1].startsWith('-') ? -Infinity : Infinity) : Number(fields[1]) };
  if (fields[2] !== undefined) {
    if (!TIMESTAMP.test(fields[2])) fail(`${fields[2]} is not a timestamp`);
    sample.timestamp = Number(fields[2]);
  }
  return sample;
}

export function parsePrometheusText(text: string): Family[] {
  if (text.includes('\r')) throw new Error('the exposition contains \\r');
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a line feed');
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  const seenSamples = new Set<string>();
  let current: string | undefined;
  const lines = text.split('\n').slice(0, -1);
  for (const [index, line] of lines.entries()) {
    const fail = (problem: string): never => {
      throw new ParseError(index + 1, line, problem);
    };
    if (line.trim() === '') continue;
    const enter = (name: string): Family => {
      if (current !== name) {
        if (current !== undefined) finished.add(current);
        if (finished.has(name)) fail(`the lines of ${name} are not one group`);
        current = name;
      }
      let family = families.get(name);
      if (!family) {
        family = { name, type: 'untyped', samples: [] };
        families.set(name, family);
      }
      return family;
    };
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!meta) continue; // an ordinary comment
      const [, keyword, name, rest] = meta;
      if (name === undefined || !METRIC_NAME.test(name)) fail(`invalid metric name ${String(name)}`);
      const family = enter(name as string);
      if (keyword === 'HELP') {
        if (family.help !== undefined) fail(`a second HELP for ${name as string}`);
        family.help = unescapeHelp(rest ?? '', fail);
      } else {
        if ((family as Family & { typed?: boolean }).typed) fail(`a second TYPE for ${name as string}`);
        if (family.samples.length > 0) fail(`TYPE for ${name as string} after its samples`);
        if (!TYPES.includes(rest as MetricType)) fail(`unknown metric type ${String(rest)}`);
        family.type = rest as MetricType;
        (family as Family & { typed?: boolean }).typed = true;
      }
      continue;
    }
    const sample = parseSample(line, fail);
    const family = enter(familyOf(sample.name, families));
    const key = `${sample.name}{${Object.entries(sample.labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`;
    if (seenSamples.has(key)) fail(`a second sample ${key}`);
    seenSamples.add(key);
    family.samples.push(sample);
  }
  return [...families.values()].map((family) => {
    const { name, help, type, samples } = family;
    return help !== undefined ? { name, help, type, samples } : { name, type, samples };
  });
}

export { LABEL_NAME, METRIC_NAME };
