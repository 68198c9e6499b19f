// Smoke test: @aws-sdk/client-lambda (v3) against a running lambda_fake.
// Usage: node smoke_js.mjs http://127.0.0.1:PORT   (run from a directory where the SDK is installed;
// .ci/smoke_js.sh does all of that). Exits non-zero with "smoke_js: FAIL [step]: ..." on any failure.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  LambdaClient, LambdaServiceException,
  CreateFunctionCommand, GetFunctionCommand, InvokeCommand, DeleteFunctionCommand, ListFunctionsCommand,
  LogType, paginateListFunctions, waitUntilFunctionActiveV2, waitUntilFunctionUpdatedV2,
  waitUntilPublishedVersionActive, UpdateFunctionConfigurationCommand, PublishVersionCommand,
  ResourceNotFoundException, ResourceConflictException,
} from "@aws-sdk/client-lambda";

const endpoint = process.argv[2];
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(endpoint ?? "")) {
  console.error("usage: node smoke_js.mjs http://127.0.0.1:PORT");
  process.exit(2);
}

let current = "setup";
const OVERALL_LIMIT_MS = 120_000;
setTimeout(() => {
  console.error(`smoke_js: FAIL [${current}]: still running after ${OVERALL_LIMIT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_LIMIT_MS).unref();

const started = Date.now();
async function step(name, body) {
  current = name;
  console.log(`smoke_js: [${((Date.now() - started) / 1000).toFixed(1)}s] ${name}`);
  try {
    return await body();
  } catch (err) {
    console.error(`smoke_js: FAIL [${name}]: ${err?.name}: ${err?.message}`);
    if (err?.$metadata) console.error(`  $metadata: ${JSON.stringify(err.$metadata)}`);
    if (err?.$fault) console.error(`  $fault: ${err.$fault}`);
    const response = err?.$response;
    if (response) {
      console.error(`  HTTP ${response.statusCode} headers: ${JSON.stringify(response.headers)}`);
      if (typeof response.body === "string") console.error(`  body: ${response.body.slice(0, 2000)}`);
    }
    if (err?.stack && !(err instanceof LambdaServiceException)) console.error(err.stack);
    process.exit(1);
  }
}

// maxAttempts 1: a retried 5xx or throttle would hide a fake's fault. Per-request time limits.
const lambda = new LambdaClient({
  endpoint, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
});
const ROLE = "arn:aws:iam::123456789012:role/lambda-role";
const ARN = "arn:aws:lambda:us-east-1:123456789012:function:";
const enc = new TextEncoder();
const dec = new TextDecoder();
const json = (bytes) => JSON.parse(dec.decode(bytes));

// ---- A zip built by hand: stored (method 0) entries, CRC-32 computed here ------------------------
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function storedZip(files) {   // files: { name: string content }
  const locals = [], centrals = [];
  let offset = 0;
  const DOS_TIME = (12 << 11) | (0 << 5), DOS_DATE = ((2024 - 1980) << 9) | (1 << 5) | 1;
  for (const [name, text] of Object.entries(files)) {
    const nameBytes = enc.encode(name), data = enc.encode(text), crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(0, 6);
    local.writeUInt16LE(0, 8); local.writeUInt16LE(DOS_TIME, 10); local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26); local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE((3 << 8) | 20, 4); central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8); central.writeUInt16LE(0, 10); central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14); central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24); central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt16LE(0, 30); central.writeUInt16LE(0, 32); central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36); central.writeUInt32LE((0o100644 << 16) >>> 0, 38); central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  const count = Object.keys(files).length;
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(0, 4); end.writeUInt16LE(0, 6);
  end.writeUInt16LE(count, 8); end.writeUInt16LE(count, 10); end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16); end.writeUInt16LE(0, 20);
  return new Uint8Array(Buffer.concat([...locals, ...centrals, end]));
}

async function expectError(promise, ErrorClass, status) {
  let caught;
  try {
    const out = await promise;
    assert.fail(`expected ${ErrorClass.name}, but the call succeeded: ${JSON.stringify(out)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    caught = err;
  }
  assert.ok(caught instanceof ErrorClass,
    `expected an instance of ${ErrorClass.name}, got ${caught?.constructor?.name} (name ${caught?.name}): ${caught?.message}`);
  assert.ok(caught instanceof LambdaServiceException, "typed error is not a LambdaServiceException");
  assert.equal(caught.name, ErrorClass.name);
  assert.equal(caught.$metadata?.httpStatusCode, status, `HTTP status of ${ErrorClass.name}`);
  assert.equal(caught.$fault, "client");
  assert.ok(caught.message, `${ErrorClass.name} has no message`);
  return caught;
}

// Against a server started with --strict-aws (`node smoke_js.mjs URL --strict`): the SDK's waiters
// through AWS's lifecycle, Pending then Active, InProgress then Successful; nothing else.
if (process.argv[3] === "--strict") {
  await step("strict: waiters through Pending, InProgress and a new version", async () => {
    const FunctionName = "smoke-js-strict";
    const made = await lambda.send(new CreateFunctionCommand({
      FunctionName, Runtime: "nodejs20.x", Handler: "index.handler", Role: ROLE,
      Code: { ZipFile: new TextEncoder().encode("exports.handler = async () => 1;") },
    }));
    assert.equal(made.State, "Pending");
    const waiting = { client: lambda, maxWaitTime: 30, minDelay: 1, maxDelay: 1 };
    assert.equal((await waitUntilFunctionActiveV2(waiting, { FunctionName })).state, "SUCCESS");
    const updated = await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName, Timeout: 9 }));
    assert.equal(updated.LastUpdateStatus, "InProgress");
    assert.equal((await waitUntilFunctionUpdatedV2(waiting, { FunctionName })).state, "SUCCESS");
    const { Version } = await lambda.send(new PublishVersionCommand({ FunctionName }));
    const published = await waitUntilPublishedVersionActive(waiting, { FunctionName, Qualifier: Version });
    assert.equal(published.state, "SUCCESS");
  });
  console.log("smoke_js: OK (strict)");
  process.exit(0);
}

const ZIP_FN = "smoke-js-zip", SRC_FN = "smoke-js-src", PY_FN = "smoke-js-py", ERR_FN = "smoke-js-thrower";
const ALL = [ZIP_FN, SRC_FN, PY_FN, ERR_FN];
const zipBytes = storedZip({
  "index.js": 'const { triple } = require("./lib");\n'
    + "exports.handler = async (event, context) => {\n"
    + '  console.log("zip handler got", JSON.stringify(event));\n'
    + "  return { tripled: triple(event.n), fn: context.functionName, requestId: context.awsRequestId };\n"
    + "};\n",
  "lib.js": "exports.triple = (n) => n * 3;\n",
});

await step("CreateFunction from a hand-built zip", async () => {
  const out = await lambda.send(new CreateFunctionCommand({
    FunctionName: ZIP_FN, Runtime: "nodejs20.x", Handler: "index.handler", Role: ROLE, Timeout: 10,
    Code: { ZipFile: zipBytes },
  }));
  assert.equal(out.FunctionName, ZIP_FN);
  assert.equal(out.FunctionArn, ARN + ZIP_FN);
  assert.equal(out.Runtime, "nodejs20.x");
  assert.equal(out.CodeSize, zipBytes.length);
  assert.equal(out.$metadata.httpStatusCode, 201);
});

await step("CreateFunction from raw source (TextEncoder bytes), Node.js and Python", async () => {
  const out = await lambda.send(new CreateFunctionCommand({
    FunctionName: SRC_FN, Runtime: "nodejs20.x", Handler: "index.handler", Role: ROLE,
    Code: { ZipFile: enc.encode(
      "exports.handler = async (event, context) => ({ doubled: event.n * 2, fn: context.functionName });") },
  }));
  assert.equal(out.FunctionName, SRC_FN);
  await lambda.send(new CreateFunctionCommand({
    FunctionName: PY_FN, Runtime: "python3.12", Handler: "app.handler", Role: ROLE,
    Code: { ZipFile: enc.encode("def handler(event, context):\n    return {'sum': sum(event['xs'])}\n") },
  }));
  await lambda.send(new CreateFunctionCommand({
    FunctionName: ERR_FN, Runtime: "nodejs20.x", Handler: "index.handler", Role: ROLE,
    Code: { ZipFile: enc.encode('exports.handler = async () => { throw new TypeError("boom"); };') },
  }));
});

await step("waitUntilFunctionActiveV2", async () => {
  for (const FunctionName of ALL) {
    const result = await waitUntilFunctionActiveV2({ client: lambda, maxWaitTime: 30 }, { FunctionName });
    assert.equal(result.state, "SUCCESS", `${FunctionName}: ${JSON.stringify(result)}`);
  }
});

await step("waitUntilFunctionUpdatedV2 and waitUntilPublishedVersionActive (Active at once)", async () => {
  const waiting = { client: lambda, maxWaitTime: 30, minDelay: 1, maxDelay: 1 };
  await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: ZIP_FN, Timeout: 9 }));
  assert.equal((await waitUntilFunctionUpdatedV2(waiting, { FunctionName: ZIP_FN })).state, "SUCCESS");
  const { Version } = await lambda.send(new PublishVersionCommand({ FunctionName: ZIP_FN }));
  const published = await waitUntilPublishedVersionActive(waiting, { FunctionName: ZIP_FN, Qualifier: Version });
  assert.equal(published.state, "SUCCESS");
});

await step("GetFunction: Code.Location serves the zip uploaded", async () => {
  const out = await lambda.send(new GetFunctionCommand({ FunctionName: ZIP_FN }));
  assert.equal(out.Configuration.State, "Active");
  assert.equal(out.Configuration.Handler, "index.handler");
  const served = new Uint8Array(await (await fetch(out.Code.Location, { signal: AbortSignal.timeout(30_000) })).arrayBuffer());
  assert.deepEqual(served, zipBytes);
});

await step("InvokeCommand", async () => {
  let out = await lambda.send(new InvokeCommand({ FunctionName: ZIP_FN, Payload: JSON.stringify({ n: 7 }) }));
  assert.equal(out.StatusCode, 200);
  assert.equal(out.FunctionError, undefined);
  assert.equal(out.ExecutedVersion, "$LATEST");
  const payload = json(out.Payload);
  assert.equal(payload.tripled, 21);
  assert.equal(payload.fn, ZIP_FN);
  assert.match(payload.requestId, /^[0-9a-f-]{36}$/);

  out = await lambda.send(new InvokeCommand({ FunctionName: SRC_FN, Payload: enc.encode('{"n": 21}') }));
  assert.deepEqual(json(out.Payload), { doubled: 42, fn: SRC_FN });

  out = await lambda.send(new InvokeCommand({ FunctionName: PY_FN, Payload: JSON.stringify({ xs: [1, 2, 3] }) }));
  assert.deepEqual(json(out.Payload), { sum: 6 });
});

await step("InvokeCommand with LogType Tail", async () => {
  const out = await lambda.send(new InvokeCommand({
    FunctionName: ZIP_FN, Payload: JSON.stringify({ n: 1 }), LogType: LogType.Tail,
  }));
  assert.equal(json(out.Payload).tripled, 3);
  assert.ok(out.LogResult, "no LogResult");
  const log = Buffer.from(out.LogResult, "base64").toString("utf8");
  for (const line of ["START RequestId", "END RequestId", "REPORT RequestId", 'zip handler got {"n":1}']) {
    assert.ok(log.includes(line), `decoded LogResult lacks ${JSON.stringify(line)}:\n${log}`);
  }
});

await step("InvokeCommand on a handler that throws: FunctionError Unhandled", async () => {
  const out = await lambda.send(new InvokeCommand({ FunctionName: ERR_FN, Payload: "{}" }));
  assert.equal(out.StatusCode, 200);
  assert.equal(out.FunctionError, "Unhandled");
  const payload = json(out.Payload);
  assert.equal(payload.errorType, "TypeError");
  assert.equal(payload.errorMessage, "boom");
});

await step("typed errors: ResourceNotFoundException, ResourceConflictException", async () => {
  await expectError(lambda.send(new GetFunctionCommand({ FunctionName: "smoke-js-missing" })),
    ResourceNotFoundException, 404);
  await expectError(lambda.send(new InvokeCommand({ FunctionName: "smoke-js-missing", Payload: "{}" })),
    ResourceNotFoundException, 404);
  const conflict = await expectError(lambda.send(new CreateFunctionCommand({
    FunctionName: SRC_FN, Runtime: "nodejs20.x", Handler: "index.handler", Role: ROLE,
    Code: { ZipFile: enc.encode("exports.handler = async () => 1;") },
  })), ResourceConflictException, 409);
  assert.match(conflict.message, /already exist/);
});

await step("paginateListFunctions (pages of 2)", async () => {
  const names = [];
  let pages = 0;
  for await (const page of paginateListFunctions({ client: lambda, pageSize: 2 }, {})) {
    pages += 1;
    assert.ok(page.Functions.length <= 2, `page of ${page.Functions.length} functions with MaxItems 2`);
    names.push(...page.Functions.map((f) => f.FunctionName));
    assert.ok(pages <= 10, "paginator does not end");
  }
  assert.deepEqual(names, [...ALL].sort());
  assert.equal(pages, 2);
});

await step("DeleteFunction", async () => {
  for (const FunctionName of ALL) {
    const out = await lambda.send(new DeleteFunctionCommand({ FunctionName }));
    assert.equal(out.$metadata.httpStatusCode, 204);
  }
  await expectError(lambda.send(new GetFunctionCommand({ FunctionName: ZIP_FN })), ResourceNotFoundException, 404);
  const list = await lambda.send(new ListFunctionsCommand({}));
  assert.deepEqual(list.Functions, []);
});

await step("handlers use the runtime's SDK v3 without bundling it (require and import)", async () => {
  // The server was started with LAMBDA_FAKE_NODE_SDK naming the node_modules this SDK is in.
  const call = "const lambda = new LambdaClient({ endpoint: process.env.AWS_ENDPOINT_URL_LAMBDA });\n"
    + "const handler = async () => (await lambda.send(new ListFunctionsCommand({}))).Functions\n"
    + "  .map((f) => f.FunctionName);\n";
  const sources = {
    "smoke-js-sdk-cjs": 'const { LambdaClient, ListFunctionsCommand } = require("@aws-sdk/client-lambda");\n'
      + call + "exports.handler = handler;\n",
    "smoke-js-sdk-esm": 'import { LambdaClient, ListFunctionsCommand } from "@aws-sdk/client-lambda";\n'
      + call + "export { handler };\n",
  };
  for (const [FunctionName, source] of Object.entries(sources)) {
    await lambda.send(new CreateFunctionCommand({
      FunctionName, Runtime: "nodejs20.x", Handler: "index.handler", Role: ROLE, Timeout: 30,
      Code: { ZipFile: enc.encode(source) },
    }));
  }
  for (const FunctionName of Object.keys(sources)) {
    const out = await lambda.send(new InvokeCommand({ FunctionName }));
    assert.equal(out.FunctionError, undefined, dec.decode(out.Payload));
    assert.deepEqual(json(out.Payload).sort(), Object.keys(sources).sort());
  }
  for (const FunctionName of Object.keys(sources)) {
    await lambda.send(new DeleteFunctionCommand({ FunctionName }));
  }
});

lambda.destroy();
console.log(`smoke_js: OK (${((Date.now() - started) / 1000).toFixed(1)}s)`);
