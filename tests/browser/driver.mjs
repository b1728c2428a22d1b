// Drives Debian's Chromium (playwright-core, no browser download) for the browser
// frontend's end-to-end tests and benchmarks. One JSON argument says what to do:
//
//   {"mode": "results", "base": "http://127.0.0.1:7878", "queries": ["?bot=0.8&…", …],
//    "timeout_ms": 120000}
//       opens one page per query, waits until every page has put its match's summary on
//       window.pongResult, and prints {"page": i, "result": …, "pre": …} per page, one JSON
//       line each (`pre` is the text of <pre id="pong-result">). With
//       "freeze": {"page": 0, "after_ms": 2000, "for_ms": 5000}, that page is frozen (as a
//       browser freezes a background tab: no script runs, no timer fires, frames queue)
//       that long into its match, then woken.
//   {"mode": "keys", "base": …, "query": "?name=Key&players=2", …}
//       a player at the keyboard: once playing, holds the key that moves its paddle and
//       prints where the paddle is drawn in the frame before and the frame after the press.
//   {"mode": "fps", "base": …, "queries": […], "seconds": 5, …}
//       frames drawn per second by each page while its match is on.
//   {"mode": "load", "base": …, "query": …, "runs": 5, …}
//       milliseconds from opening the page to its first lobby frame, per run.
//   {"mode": "latency", "base": …, "queries": [person, watcher], "flips": 100, "every_ms": 200}
//       input to remote: the first page is a person at the keyboard who reverses their
//       paddle every every_ms (key up, other key down); the second page reports each of its
//       new confirmed states (window.pongOnConfirmed) the moment its frame arrives. From a
//       key event to the first confirmed state of the other page showing the paddle moving
//       the new way, in ms (both pages read one clock: performance.timeOrigin + now()).
//   {"mode": "shot", "base": …, "queries": […], "after_ms": 4000, "path": "out.png"}
//       a screenshot of the first page, that long into its match.
//
// Exits 1 with what each page was doing if the time runs out.
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2] ?? "{}");
const timeout = plan.timeout_ms ?? 120000;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    // Every page draws as if it were the one on screen.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    // "insecure": a test server's self-signed certificate, for https and wss alike.
    ...(plan.insecure ? ["--ignore-certificate-errors"] : []),
  ],
});

const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const log = (m) => process.stderr.write(`[driver] ${m}\n`);

async function open(query) {
  // A context each: separate windows, as separate people would have.
  const context = await browser.newContext({
    viewport: { width: 1280, height: 720 },
    ignoreHTTPSErrors: plan.insecure ?? false,
  });
  const page = await context.newPage();
  page.on("console", (m) => log(`console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log(`page error: ${e}`));
  await page.goto(plan.base + "/" + query);
  return page;
}

async function phases(pages) {
  return Promise.all(pages.map((p) => p.evaluate(() => window.pongPhase ?? "not started")));
}

async function waitAll(pages, predicate, what) {
  const started = Date.now();
  for (;;) {
    const done = await Promise.all(pages.map((p) => p.evaluate(predicate)));
    if (done.every(Boolean)) return;
    if (Date.now() - started > timeout) {
      log(`timed out waiting for ${what}; phases: ${JSON.stringify(await phases(pages))}`);
      await browser.close();
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

try {
  if (plan.mode === "results") {
    const pages = await Promise.all(plan.queries.map(open));
    if (plan.freeze) {
      const page = pages[plan.freeze.page];
      await waitAll([page], () => window.pongPhase === "playing", "play");
      await page.waitForTimeout(plan.freeze.after_ms ?? 2000);
      // The debugger stops the page's script where it next runs: no handler, timer or
      // frame runs and the socket's messages queue, as in a frozen background tab.
      // (Page.setWebLifecycleState freezes only pages that are hidden; headless ones are
      // not.)
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Debugger.enable");
      await cdp.send("Debugger.pause");
      log(`page ${plan.freeze.page} frozen`);
      await new Promise((r) => setTimeout(r, plan.freeze.for_ms ?? 5000));
      await cdp.send("Debugger.resume");
      await cdp.send("Debugger.disable");
      log(`page ${plan.freeze.page} woken`);
    }
    await waitAll(pages, () => window.pongResult !== undefined, "every result");
    for (const [i, p] of pages.entries()) {
      const [result, pre] = await p.evaluate(() => [
        window.pongResult,
        document.getElementById("pong-result").textContent,
      ]);
      say({ page: i, result, pre });
    }
  } else if (plan.mode === "keys") {
    const page = await open(plan.query);
    await waitAll([page], () => window.pongPhase === "playing" && window.pongView, "play");
    // Let the paddle settle where the player left it (no key held yet).
    await page.waitForTimeout(300);
    const key = await page.evaluate(() => (window.pongView.vertical ? "KeyS" : "KeyD"));
    const before = await page.evaluate(
      () => new Promise((r) => requestAnimationFrame(() => r(window.pongView.own))),
    );
    // The press and the next frame, with nothing in between: the frame that follows the
    // key event must already show the paddle moving.
    const after = await page.evaluate(
      (code) =>
        new Promise((r) => {
          window.dispatchEvent(new KeyboardEvent("keydown", { code, bubbles: true }));
          requestAnimationFrame(() => r(window.pongView.own));
        }),
      key,
    );
    say({ key, before, after });
  } else if (plan.mode === "fps") {
    const pages = await Promise.all(plan.queries.map(open));
    await waitAll(pages, () => window.pongPhase === "playing", "play");
    const counts = async () => Promise.all(pages.map((p) => p.evaluate(() => window.pongFrames)));
    const start = await counts();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, (plan.seconds ?? 5) * 1000));
    const end = await counts();
    const secs = (Date.now() - t0) / 1000;
    for (const [i] of pages.entries()) say({ page: i, fps: (end[i] - start[i]) / secs });
  } else if (plan.mode === "load") {
    for (let run = 0; run < (plan.runs ?? 5); run++) {
      const page = await open(plan.query);
      await waitAll([page], () => window.pongLobbyMs !== undefined, "the lobby");
      say({ run, lobby_ms: await page.evaluate(() => window.pongLobbyMs) });
      await page.context().close();
    }
  } else if (plan.mode === "latency") {
    const [person, watcher] = await Promise.all(plan.queries.map(open));
    await waitAll([person, watcher], () => window.pongPhase === "playing", "play");
    const { seat, vertical } = await person.evaluate(() => window.pongView);
    await watcher.evaluate((seat) => {
      window.seen = [];
      let last = null;
      let dir = 0;
      window.pongOnConfirmed = (tick, paddles) => {
        const x = paddles[seat];
        if (last !== null && x !== last && Math.sign(x - last) !== dir) {
          dir = Math.sign(x - last);
          window.seen.push({ at: performance.timeOrigin + performance.now(), dir, tick });
        }
        last = x;
      };
    }, seat);
    const flips = await person.evaluate(
      ({ flips, every, vertical }) =>
        new Promise((done) => {
          const [minus, plus] = vertical ? ["KeyW", "KeyS"] : ["KeyA", "KeyD"];
          const key = (type, code) =>
            window.dispatchEvent(new KeyboardEvent(type, { code, bubbles: true }));
          const made = [];
          let dir = 1;
          const timer = setInterval(() => {
            key("keyup", dir > 0 ? minus : plus);
            key("keydown", dir > 0 ? plus : minus);
            made.push({ at: performance.timeOrigin + performance.now(), dir });
            dir = -dir;
            if (made.length >= flips) {
              clearInterval(timer);
              setTimeout(() => done(made), every);
            }
          }, every);
        }),
      { flips: plan.flips ?? 100, every: plan.every_ms ?? 200, vertical },
    );
    const seen = await watcher.evaluate(() => window.seen);
    const ms = [];
    let missed = 0;
    for (const [i, f] of flips.entries()) {
      const until = i + 1 < flips.length ? flips[i + 1].at : Infinity;
      const s = seen.find((s) => s.at >= f.at && s.at < until && s.dir === f.dir);
      if (s) ms.push(s.at - f.at);
      else missed++;
    }
    ms.sort((a, b) => a - b);
    const q = (p) => (ms.length ? ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] : null);
    say({ flips: flips.length, seen: ms.length, missed, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: ms.at(-1) ?? null });
  } else if (plan.mode === "shot") {
    const pages = await Promise.all(plan.queries.map(open));
    await waitAll(pages, () => window.pongPhase === "playing", "play");
    await pages[0].waitForTimeout(plan.after_ms ?? 4000);
    await pages[0].screenshot({ path: plan.path });
    say({ path: plan.path });
  } else {
    throw new Error(`unknown mode ${plan.mode}`);
  }
} finally {
  await browser.close();
}
