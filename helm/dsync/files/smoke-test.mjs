// `helm test`: one round trip through every enabled service's client Service, with the
// routes of the public API: lock acquire/inspect/release, queue publish/receive/ack, cache
// put/get/delete. Retries 503 (an election or a pod starting) until its deadline.
const targets = JSON.parse(process.env.DSYNC_TEST_TARGETS ?? '{}');
const deadline = Date.now() + Number(process.env.DSYNC_TEST_DEADLINE_MS ?? 60000);
const run = `helm-test-${process.env.HOSTNAME ?? 'pod'}-${Date.now().toString(36)}`;

async function call(base, method, path, body, want) {
  for (;;) {
    let status = 0;
    let text = '';
    try {
      const r = await fetch(`${base}${path}`, {
        method, signal: AbortSignal.timeout(10000),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      status = r.status;
      text = await r.text();
      if (status === want) return JSON.parse(text);
    } catch (err) {
      text = String(err);
    }
    if (Date.now() > deadline || (status !== 0 && status !== 503)) {
      throw new Error(`${method} ${path}: expected ${want}, got ${status} ${text}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function expect(ok, what) {
  if (!ok) throw new Error(what);
}

const checks = {
  async lock(base) {
    const name = encodeURIComponent(run);
    const g = await call(base, 'POST', `/v1/locks/${name}/acquire`,
      { owner: run, ttlMs: 30000, requestId: `${run}-acquire` }, 200);
    expect(Number.isInteger(g.token) && g.token > 0, `no fencing token in ${JSON.stringify(g)}`);
    const seen = await call(base, 'GET', `/v1/locks/${name}`, undefined, 200);
    expect(seen.holders.some((h) => h.owner === run), `${run} is not among the holders`);
    await call(base, 'POST', `/v1/locks/${name}/release`, { owner: run, token: g.token }, 200);
    return `lock token ${g.token} acquired and released`;
  },
  async queue(base) {
    const topic = encodeURIComponent(run);
    const pub = await call(base, 'POST', `/v1/queues/${topic}/messages`, { body: { run } }, 201);
    const id = pub.ids[0];
    let got;
    while (got === undefined) {
      const r = await call(base, 'POST', `/v1/queues/${topic}/receive`,
        { group: 'helm-test', max: 10, visibilityMs: 30000, waitMs: 2000 }, 200);
      got = r.messages.find((m) => m.id === id);
      expect(got !== undefined || Date.now() < deadline, `message ${id} was never delivered`);
    }
    expect(got.body?.run === run, `message body ${JSON.stringify(got.body)} is not ours`);
    const ack = await call(base, 'POST', `/v1/queues/${topic}/ack`,
      { group: 'helm-test', receipts: [got.receipt] }, 200);
    expect(ack.acked === 1, `ack counted ${ack.acked}`);
    return `message ${id} published, received and acked`;
  },
  async cache(base) {
    const key = encodeURIComponent(run);
    const put = await call(base, 'PUT', `/v1/cache/${key}`, { value: { run } }, 200);
    const get = await call(base, 'GET', `/v1/cache/${key}`, undefined, 200);
    expect(get.value?.run === run, `cache returned ${JSON.stringify(get.value)}`);
    expect(get.version >= put.version, `version went back: ${get.version} < ${put.version}`);
    const del = await call(base, 'DELETE', `/v1/cache/${key}`, undefined, 200);
    expect(del.deleted === true, 'delete found nothing');
    return `key written (version ${put.version}), read back and deleted`;
  },
};

let failed = 0;
for (const [svc, base] of Object.entries(targets)) {
  try {
    console.log(`ok   ${svc}: ${await checks[svc](base)}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${svc} (${base}): ${err.message}`);
  }
}
console.log(failed === 0 ? 'all services answered' : `${failed} service(s) failed`);
process.exit(failed === 0 ? 0 : 1);
