/**
 * The deployment files, checked without a Docker engine:
 * - `docker-compose config` accepts docker-compose.yml (skipped, saying so, without the binary);
 * - every chatmesh flag and CHATMESH_* variable the compose file and the Dockerfile pass is one
 *   `chatmesh node --help` lists, with a valid value where the flag has choices;
 * - the nodes use Consul discovery, have health checks and wait for a healthy Consul; the front door
 *   balances over exactly those nodes and health-checks /healthz;
 * - the Dockerfile is multi-stage, production-only in its final stage, non-root, health-checked;
 * - every path it COPYs exists and is not dropped by .dockerignore, and the file layout of the final
 *   stage, rebuilt in a temporary folder, runs a node that serves the web client and /healthz.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { Test } from 'tap';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const DOCKERFILE = join(ROOT, 'Dockerfile');
const run = promisify(execFile);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});

// ---------------------------------------------------------------------------------------------------
// What the CLI accepts: `chatmesh node --help`.

interface CliOption {
  readonly flag: string;
  readonly takesValue: boolean;
  readonly choices: readonly string[] | undefined;
  readonly env: string;
}

/** Flags of `chatmesh node`, parsed from its help (commander's layout, wrapped lines included). */
async function nodeOptions(): Promise<Map<string, CliOption>> {
  const { stdout } = await run(process.execPath, [CLI, 'node', '--help'], { env: { ...process.env, COLUMNS: '200' } });
  const text = stdout.slice(stdout.indexOf('Options:'));
  const options = new Map<string, CliOption>();
  // One block per option: from its `  --flag` line to the next option line.
  const blocks = text.split(/\n(?=\s{2}(?:-\w, )?--[a-z])/);
  for (const block of blocks) {
    const m = /^\s*(?:-\w, )?(--[a-z0-9-]+)( <[^>]+>| \[[^\]]+\])?/.exec(block);
    if (!m) continue;
    const flag = m[1]!;
    const desc = block.replace(/\s+/g, ' ');
    const choices = /choices: ((?:"[^"]*"(?:, )?)+)/.exec(desc)?.[1]?.match(/"[^"]*"/g)?.map((c) => c.slice(1, -1));
    const env = /env: (CHATMESH_[A-Z0-9_]+)/.exec(desc)?.[1] ?? `CHATMESH_${flag.slice(2).replace(/-/g, '_').toUpperCase()}`;
    options.set(flag, { flag, takesValue: m[2] !== undefined, choices, env });
  }
  return options;
}

/**
 * Checks one `chatmesh` argument list (after the entry point `node dist/cli.js`): the subcommand is
 * `node`, every flag is known, every flag that takes a value has one, choices are respected.
 * Returns the flags with their values.
 */
function checkArgs(t: Test, where: string, args: readonly string[], options: Map<string, CliOption>): Map<string, string> {
  const seen = new Map<string, string>();
  let bad = 0;
  t.equal(args[0], 'node', `${where}: runs the \`node\` subcommand`);
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      t.fail(`${where}: stray argument "${arg}"`);
      bad++;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const opt = options.get(flag);
    if (!opt) {
      t.fail(`${where}: \`chatmesh node\` has no flag ${flag}`, { accepted: [...options.keys()] });
      bad++;
      if (eq === -1 && args[i + 1] !== undefined && !args[i + 1]!.startsWith('--')) i++; // its value
      continue;
    }
    let value = '';
    if (opt.takesValue) {
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        const next = args[i + 1];
        if (next === undefined || next.startsWith('--')) {
          t.fail(`${where}: ${flag} needs a value`);
          bad++;
          continue;
        }
        value = next;
        i++;
      }
      if (opt.choices) t.ok(opt.choices.includes(value), `${where}: ${flag} ${value} is one of ${opt.choices.join(', ')}`);
    }
    seen.set(flag, value);
  }
  if (bad === 0) t.pass(`${where}: every flag is accepted by \`chatmesh node\` (${[...seen.keys()].join(' ') || 'none'})`);
  return seen;
}

/** Compose-style `${VAR:-default}` / `${VAR}` / `$$` interpolation, from the default (CI has no such vars). */
function interpolate(s: string): string {
  return s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (all, _name: string | undefined, def: string | undefined) => (all === '$$' ? '$' : def ?? ''));
}

/** A service's environment as a map (compose allows a map or a `KEY=VALUE` list). */
function environmentOf(svc: Obj): Map<string, string> {
  const env = svc['environment'];
  const out = new Map<string, string>();
  if (Array.isArray(env)) {
    for (const e of env) {
      const s = String(e);
      const i = s.indexOf('=');
      out.set(i === -1 ? s : s.slice(0, i), i === -1 ? '' : interpolate(s.slice(i + 1)));
    }
  } else if (isObj(env)) {
    for (const [k, v] of Object.entries(env)) out.set(k, v === null || v === undefined ? '' : interpolate(String(v)));
  }
  return out;
}

/** A compose `command:` as an argument list (a string is split on white space, as compose does). */
function commandOf(svc: Obj): string[] {
  const c = svc['command'];
  if (Array.isArray(c)) return c.map((x) => interpolate(String(x)));
  if (typeof c === 'string') return interpolate(c).trim().split(/\s+/);
  return [];
}

// ---------------------------------------------------------------------------------------------------
// The compose file.

function loadCompose(): { services: Record<string, Obj>; raw: Obj } {
  // `merge: true`: the file shares the node settings through a `<<: *anchor` merge key.
  const raw = obj(parseYaml(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }));
  const services = Object.fromEntries(Object.entries(obj(raw['services'])).map(([k, v]) => [k, obj(v)]));
  return { services, raw };
}

/** The services that run chatmesh: built from this repository's Dockerfile. */
function chatmeshServices(services: Record<string, Obj>): Array<[string, Obj]> {
  return Object.entries(services).filter(([, s]) => {
    const b = s['build'];
    if (typeof b === 'string') return posix.normalize(b) === '.';
    if (isObj(b)) return posix.normalize(String(b['context'] ?? '.')) === '.' && String(b['dockerfile'] ?? 'Dockerfile') === 'Dockerfile';
    return false;
  });
}

function dockerComposeBinary(): Promise<boolean> {
  return run('docker-compose', ['version'], { timeout: 30_000 }).then(() => true, () => false);
}

const haveCompose = await dockerComposeBinary();
const noCompose = 'the docker-compose binary is missing (`apt-get install docker-compose`; .ci/run installs it): docker-compose.yml not validated by docker-compose';

t.test('docker-compose config validates docker-compose.yml', { skip: haveCompose ? false : noCompose }, async (t) => {
  // Variables the file interpolates are removed so their defaults are what gets checked.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHATMESH_') && !k.startsWith('COMPOSE_')));
  const res = await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { cwd: ROOT, env, timeout: 60_000 }).then(
    (r) => ({ ok: true as const, ...r }),
    (err: { stdout?: string; stderr?: string; message: string }) => ({ ok: false as const, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message }),
  );
  t.ok(res.ok, 'docker-compose config exits 0', { stderr: res.stderr });
  if (!res.ok) return;
  // What docker-compose resolved agrees with how this test reads the file (anchors, merge keys).
  const resolved = obj(obj(parseYaml(res.stdout))['services']);
  const { services } = loadCompose();
  t.same(Object.keys(resolved).sort(), Object.keys(services).sort(), 'same services as the parsed file');
  for (const [name, svc] of chatmeshServices(services)) {
    const r = obj(resolved[name]);
    t.same(commandOf(r), commandOf(svc), `${name}: same command`);
    t.same([...environmentOf(r)].sort(), [...environmentOf(svc)].sort(), `${name}: same environment`);
  }
});

t.test('docker-compose.yml: nodes pass only flags the CLI accepts, use Consul, are health-checked', async (t) => {
  t.ok(existsSync(CLI), 'dist/cli.js exists (run `npm run build` first)');
  const options = await nodeOptions();
  t.ok(options.has('--discovery') && options.has('--consul-url'), 'read the flags of `chatmesh node --help`', { flags: [...options.keys()] });
  const envNames = new Map([...options.values()].map((o) => [o.env, o]));

  const { services } = loadCompose();
  const consul = Object.entries(services).find(([, s]) => String(s['image'] ?? '').startsWith('hashicorp/consul:'));
  t.ok(consul, 'a service runs the hashicorp/consul image');
  const [consulName, consulSvc] = consul ?? ['consul', {}];
  t.ok(isObj(consulSvc['healthcheck']) && obj(consulSvc['healthcheck'])['test'] !== undefined, `${consulName} has a healthcheck`);

  const nodes = chatmeshServices(services);
  t.ok(nodes.length >= 3, `at least three chatmesh nodes are built from the Dockerfile (${nodes.map(([n]) => n).join(', ')})`);
  const ids = new Set<string>();
  for (const [name, svc] of nodes) {
    t.test(name, async (t) => {
      const flags = checkArgs(t, `${name} command`, commandOf(svc), options);
      const env = environmentOf(svc);
      const fromEnv = new Map<string, string>();
      for (const [k, v] of env) {
        if (!k.startsWith('CHATMESH_')) continue;
        const opt = envNames.get(k);
        t.ok(opt, `${name}: ${k} is a variable \`chatmesh node\` reads`, { accepted: [...envNames.keys()] });
        if (!opt) continue;
        if (opt.choices) t.ok(opt.choices.includes(v), `${name}: ${k}=${v} is one of ${opt.choices.join(', ')}`);
        fromEnv.set(opt.flag, v);
      }
      // The effective setting: the flag wins over the variable.
      const setting = (flag: string): string | undefined => flags.get(flag) ?? fromEnv.get(flag);

      t.equal(setting('--discovery'), 'consul', 'uses --discovery consul');
      const consulUrl = new URL(setting('--consul-url') ?? 'http://127.0.0.1:8500');
      t.equal(consulUrl.hostname, consulName, `--consul-url points at the ${consulName} service`);
      t.equal(setting('--host'), '0.0.0.0', 'listens on every interface of the container (--host 0.0.0.0)');
      const advertise = setting('--advertise');
      t.ok(advertise === name || advertise === svc['hostname'], `--advertise ${advertise} is the name peers resolve (service ${name})`);
      const id = setting('--id');
      t.ok(id, 'has an explicit --id');
      t.notOk(ids.has(id!), `--id ${id} is unique`);
      ids.add(id!);
      if (setting('--auth') === 'jwt') t.ok(setting('--jwt-secret'), '--auth jwt comes with --jwt-secret');

      const hc = obj(svc['healthcheck']);
      t.ok(hc['test'] !== undefined && hc['disable'] !== true, 'has a healthcheck');
      t.match(JSON.stringify(hc['test']), /\/healthz/, 'the healthcheck asks /healthz');
      const dep = svc['depends_on'];
      t.equal(obj(obj(dep)[consulName])['condition'], 'service_healthy', `depends on ${consulName} with condition: service_healthy`);
    });
  }

  // Bind-mounted config files exist (consul/server.hcl, consul/haproxy.cfg).
  for (const [name, svc] of Object.entries(services)) {
    for (const v of Array.isArray(svc['volumes']) ? svc['volumes'] : []) {
      const src = typeof v === 'string' ? v.split(':')[0]! : String(obj(v)['source'] ?? '');
      if (src.startsWith('./') || src.startsWith('../')) t.ok(existsSync(join(ROOT, src)), `${name}: mounted ${src} exists`);
    }
  }
});

t.test('the front door spreads clients over exactly the nodes and health-checks /healthz', async (t) => {
  const { services } = loadCompose();
  const door = Object.entries(services).find(([, s]) => /^(haproxy|nginx):/.test(String(s['image'] ?? '')));
  t.ok(door, 'an HAProxy or nginx service');
  if (!door) return;
  const [name, svc] = door;
  t.ok((Array.isArray(svc['ports']) ? svc['ports'] : []).some((p) => /(^|:)8080:8080/.test(String(p))), `${name} publishes host port 8080`);
  const cfgMount = (Array.isArray(svc['volumes']) ? svc['volumes'] : []).map(String).find((v) => v.includes('haproxy.cfg'));
  if (!cfgMount) {
    t.pass(`${name} is not HAProxy with a mounted haproxy.cfg: its config is not checked`);
    return;
  }
  const cfg = readFileSync(join(ROOT, cfgMount.split(':')[0]!), 'utf8').replace(/#.*$/gm, '');
  t.match(cfg, /^\s*balance\s+leastconn\b/m, 'balance leastconn');
  t.match(cfg, /^\s*timeout\s+tunnel\s+\S+/m, 'a tunnel timeout for WebSockets');
  t.match(cfg, /^\s*option\s+httpchk\b/m, 'HTTP health checks');
  t.match(cfg, /uri\s+\/healthz\b/, 'the health check asks /healthz');
  t.match(cfg, /expect\s+status\s+200\b/, 'only 200 counts as healthy (503 = draining)');
  const servers = [...cfg.matchAll(/^\s*server\s+\S+\s+([^\s:]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`).sort();
  const nodes = chatmeshServices(services).map(([n, s]) => {
    const i = commandOf(s).indexOf('--http-port');
    return `${n}:${i === -1 ? (environmentOf(s).get('CHATMESH_HTTP_PORT') || '8080') : commandOf(s)[i + 1]}`;
  }).sort();
  t.same(servers, nodes, 'one server line per chatmesh node, on its HTTP port');
});

// ---------------------------------------------------------------------------------------------------
// The Dockerfile.

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (buf === '' && /^\s*(#|$)/.test(line)) return;
    if (buf !== '' && /^\s*#/.test(line)) return; // comment inside a continuation
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += line.replace(/\\\s*$/, ' ');
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(buf);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  return out;
}

/** Stages: each from its FROM to the next. */
function stagesOf(ins: Instruction[]): Array<{ from: string; name: string | undefined; ins: Instruction[] }> {
  const stages: Array<{ from: string; name: string | undefined; ins: Instruction[] }> = [];
  for (const i of ins) {
    if (i.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(i.args);
      stages.push({ from: m?.[1] ?? '', name: m?.[2], ins: [] });
    } else stages.at(-1)?.ins.push(i);
  }
  return stages;
}

/** JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD, or undefined for the shell form. */
function execForm(s: string): string[] | undefined {
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly dest: string;
  readonly line: number;
}

function copiesOf(ins: Instruction[]): Copy[] {
  return ins.filter((i) => i.op === 'COPY' || i.op === 'ADD').map((i) => {
    let words = execForm(i.args) ?? i.args.split(/\s+/);
    let from: string | undefined;
    const flags = words.filter((w) => w.startsWith('--'));
    for (const f of flags) if (f.startsWith('--from=')) from = f.slice('--from='.length);
    words = words.filter((w) => !w.startsWith('--'));
    return { from, sources: words.slice(0, -1), dest: words.at(-1)!, line: i.line };
  });
}

/** .dockerignore as a predicate over context-relative paths (Docker semantics: last match wins). */
function dockerignore(): (rel: string) => boolean {
  const file = join(ROOT, '.dockerignore');
  const rules = (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const negate = l.startsWith('!');
    const pat = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
    const re = new RegExp(`^${pat.split('**').map((p) => p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('.*')}$`);
    return { negate, re };
  });
  return (rel) => {
    const parts = posix.normalize(rel).replace(/\/+$/, '').split('/');
    let ignored = false;
    for (const r of rules) {
      // A pattern that matches a folder excludes everything in it.
      for (let n = 1; n <= parts.length; n++) {
        if (r.re.test(parts.slice(0, n).join('/'))) {
          ignored = !r.negate;
          break;
        }
      }
    }
    return ignored;
  };
}

t.test('Dockerfile: multi-stage, production-only final stage, non-root, health-checked', async (t) => {
  const ins = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
  const stages = stagesOf(ins);
  t.ok(stages.length >= 2, `multi-stage (${stages.length} stages)`);
  for (const s of stages) {
    const earlier = stages.slice(0, stages.indexOf(s)).some((e) => e.name === s.from);
    t.ok(earlier || s.from === 'node:20-bookworm-slim', `stage ${s.name ?? '?'} is based on node:20-bookworm-slim (${s.from})`);
  }
  const build = stages[0]!;
  const final = stages.at(-1)!;
  const runs = (s: typeof final): string[] => s.ins.filter((i) => i.op === 'RUN').map((i) => i.args);

  t.ok(runs(build).some((r) => /\bnpm ci\b/.test(r)), 'build stage: npm ci');
  t.ok(runs(build).some((r) => /\bnpm run build\b/.test(r)), 'build stage: npm run build');
  // `npm ci` runs `prepare` (= npm run build) unless --ignore-scripts: the build would run twice,
  // the first time before the sources are copied.
  const buildCi = runs(build).filter((r) => /\bnpm ci\b/.test(r));
  t.ok(buildCi.every((r) => /--ignore-scripts\b/.test(r)), 'build stage: npm ci --ignore-scripts, so the build runs once');

  const finalRuns = runs(final);
  t.ok(finalRuns.some((r) => /\bnpm ci\b/.test(r) && /--omit=dev\b/.test(r)), 'final stage: npm ci --omit=dev');
  t.notOk(finalRuns.some((r) => /\bnpm (ci|install|i)\b/.test(r) && !/--omit=dev\b/.test(r)), 'final stage: no npm install of dev dependencies');
  t.ok(finalRuns.filter((r) => /\bnpm ci\b/.test(r)).every((r) => /--ignore-scripts\b/.test(r)), 'final stage: --ignore-scripts (prepare would need the dev tools)');
  t.notOk(finalRuns.some((r) => /\bnpm run build\b|\btsc\b/.test(r)), 'final stage: no build');
  t.ok(copiesOf(final.ins).some((c) => c.from === build.name && c.sources.some((s) => /^\/app\/dist\/?$|(^|\/)dist\/?$/.test(s))), 'final stage copies dist/ from the build stage');

  const users = final.ins.filter((i) => i.op === 'USER').map((i) => i.args.split(':')[0]!);
  t.ok(users.length > 0, 'final stage sets USER');
  t.notOk(['root', '0'].includes(users.at(-1) ?? 'root'), `runs as non-root (${users.at(-1)})`);

  const hc = final.ins.filter((i) => i.op === 'HEALTHCHECK').at(-1);
  t.ok(hc, 'HEALTHCHECK');
  t.match(hc?.args ?? '', /\/healthz/, 'the HEALTHCHECK asks /healthz');
  t.notMatch(hc?.args ?? '', /\b(curl|wget)\b/, 'with no curl/wget (not in the slim image)');

  const expose = final.ins.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
  for (const p of ['8080', '7070', '9090']) t.ok(expose.includes(p), `EXPOSE ${p}`);

  const entry = execForm(final.ins.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? '');
  t.same(entry, ['node', 'dist/cli.js'], 'ENTRYPOINT ["node","dist/cli.js"]');
  const cmd = execForm(final.ins.filter((i) => i.op === 'CMD').at(-1)?.args ?? '');
  t.same(cmd, ['node', '--host', '0.0.0.0'], 'CMD ["node","--host","0.0.0.0"]');
  checkArgs(t, 'Dockerfile CMD', cmd ?? [], await nodeOptions());
});

t.test('Dockerfile: every COPY source exists and is in the build context', async (t) => {
  const stages = stagesOf(parseDockerfile(readFileSync(DOCKERFILE, 'utf8')));
  const ignored = dockerignore();
  for (const s of stages) {
    for (const c of copiesOf(s.ins)) {
      if (c.from !== undefined) {
        t.ok(stages.some((e) => e.name === c.from), `line ${c.line}: --from=${c.from} names a stage`);
        continue;
      }
      for (const src of c.sources) {
        t.ok(existsSync(join(ROOT, src)), `line ${c.line}: ${src} exists`);
        t.notOk(ignored(src), `line ${c.line}: ${src} is not excluded by .dockerignore`);
      }
    }
  }
  // The build needs these and the image must not carry these.
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'proto/mesh.proto', 'src/cli.ts', 'src/web/index.html']) t.notOk(ignored(p), `${p} is in the build context`);
  for (const p of ['node_modules', 'dist', '.git', 'test', '.tap']) t.ok(ignored(p), `${p} is excluded by .dockerignore`);
});

t.test('the final stage\'s file layout runs a node: web client, protos and /healthz resolve', async (t) => {
  t.ok(existsSync(CLI), 'dist/cli.js exists (run `npm run build` first)');
  const stages = stagesOf(parseDockerfile(readFileSync(DOCKERFILE, 'utf8')));
  const build = stages[0]!;
  const final = stages.at(-1)!;
  const workdirOf = (s: typeof final): string => s.ins.filter((i) => i.op === 'WORKDIR').at(-1)?.args ?? '/';
  const appDir = workdirOf(final);
  const buildDir = workdirOf(build);
  const ignored = dockerignore();

  // Rebuild the image's /app from the COPY lines: context paths from the repository (without what
  // .dockerignore drops), build-stage paths from the repository's own build output.
  const image = mkdtempSync(join(tmpdir(), 'chatmesh-image-'));
  t.teardown(() => rmSync(image, { recursive: true, force: true }));
  for (const c of copiesOf(final.ins)) {
    for (const src of c.sources) {
      let rel: string;
      if (c.from === undefined) rel = src;
      else if (c.from === build.name) rel = posix.relative(buildDir, posix.resolve(buildDir, src));
      else continue;
      const destAbs = posix.resolve(appDir, c.dest);
      const destRel = posix.relative(appDir, destAbs);
      t.notOk(destRel.startsWith('..'), `COPY ${src} lands under the WORKDIR ${appDir}`);
      const target = c.dest.endsWith('/') && !statSync(join(ROOT, rel)).isDirectory() ? join(image, destRel, posix.basename(rel)) : join(image, destRel);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(ROOT, rel), target, {
        recursive: true,
        filter: (p) => c.from !== undefined || !ignored(posix.relative(ROOT, p.split('\\').join('/'))),
      });
    }
  }
  // npm ci's node_modules: the repository's (a superset: dev dependencies too).
  symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'), 'dir');
  const protos = readdirSync(join(ROOT, 'proto')).filter((f) => f.endsWith('.proto')).map((f) => `proto/${f}`);
  for (const p of ['dist/cli.js', ...protos, 'src/web/index.html', 'package.json']) {
    t.ok(existsSync(join(image, p)), `the image has ${p}`);
  }

  const entry = execForm(final.ins.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? '') ?? [];
  t.equal(entry[0], 'node');
  const child = spawn(process.execPath, [...entry.slice(1), 'node', '--host', '127.0.0.1', '--http-port', '0', '--mesh-port', '0', '--admin-port', '0', '--log-level', 'info'], {
    cwd: image,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHATMESH_'))),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as Obj;
        if (typeof rec['httpPort'] === 'number' && typeof rec['meshPort'] === 'number') resolve(rec['httpPort']);
      }
    });
    child.once('exit', (code) => reject(new Error(`the node in the image layout exited ${code}: ${err}${out}`)));
  });
  const page = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(page.status, 200, 'serves the web client from src/web/');
  t.match(await page.text(), /<html/i);
  t.equal((await fetch(`http://127.0.0.1:${port}/app.js`)).status, 200, 'and its script');
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(health.status, 200, '/healthz is 200: listeners up (mesh protos loaded from proto/)');

  // The health checks themselves, as Docker would run them (exit 0 = healthy).
  const hcCmd = execForm(/^(?:--\S+\s+)*CMD\s+(.*)$/s.exec(final.ins.filter((i) => i.op === 'HEALTHCHECK').at(-1)?.args ?? '')?.[1] ?? '');
  const { services } = loadCompose();
  const checks: Array<[string, string[] | undefined]> = [['Dockerfile HEALTHCHECK', hcCmd]];
  for (const [name, svc] of chatmeshServices(services)) {
    const test = obj(svc['healthcheck'])['test'];
    checks.push([`${name} healthcheck`, Array.isArray(test) && test[0] === 'CMD' ? test.slice(1).map(String) : undefined]);
  }
  for (const [where, argv] of checks) {
    if (!argv || argv[0] !== 'node') {
      t.fail(`${where}: expected the exec form running node`, { argv });
      continue;
    }
    const env = { ...process.env, CHATMESH_HTTP_PORT: String(port) };
    const ok = await run(process.execPath, argv.slice(1), { env, timeout: 10_000 }).then(() => true, () => false);
    t.ok(ok, `${where} passes against the running node (CHATMESH_HTTP_PORT=${port})`);
  }

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: exits 0');
  const after = await run(process.execPath, hcCmd!.slice(1), { env: { ...process.env, CHATMESH_HTTP_PORT: String(port) }, timeout: 10_000 }).then(() => true, () => false);
  t.notOk(after, 'the HEALTHCHECK fails once the node is gone');
});
