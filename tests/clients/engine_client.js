// A Node.js client of the engine's gRPC API, built only from proto/ at run time.
//
//   node engine_client.js ADDRESS TOKEN
//
// ENGINE_PROTO_DIR names the proto/ directory. Loads the contracts with @grpc/proto-loader
// (which brings the google/protobuf well-known types itself), registers a definition, starts
// a run of it, reads its pending action with GetWorkflow, submits the result, reads the
// result, and prints what it saw as one JSON object. Any failure exits non-zero.
"use strict";

const crypto = require("crypto");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, token] = process.argv.slice(2);
if (!address || !token) {
  console.error("usage: node engine_client.js ADDRESS TOKEN");
  process.exit(2);
}
const protoDir = process.env.ENGINE_PROTO_DIR;

const packageDefinition = protoLoader.loadSync(
  ["engine/api/v1/definition_service.proto", "engine/api/v1/workflow_service.proto"],
  {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);
const api = grpc.loadPackageDefinition(packageDefinition).engine.api.v1;
const credentials = grpc.credentials.createInsecure();
const definitions = new api.DefinitionService(address, credentials);
const workflows = new api.WorkflowService(address, credentials);
const metadata = new grpc.Metadata();
metadata.set("authorization", `Bearer ${token}`);

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + 15000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

// google.protobuf.Value <-> JSON (proto-loader leaves the well-known types as messages).
function fromValue(value) {
  if (!value || !value.kind) return null;
  switch (value.kind) {
    case "nullValue":
      return null;
    case "structValue":
      return Object.fromEntries(
        Object.entries(value.structValue.fields).map(([k, v]) => [k, fromValue(v)]),
      );
    case "listValue":
      return value.listValue.values.map(fromValue);
    default:
      return value[value.kind];
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const name = `node-greeter-${crypto.randomUUID().slice(0, 8)}`;
  const yaml = [
    `name: ${name}`,
    "version: 1",
    "inputs:",
    "  who: {type: string, required: true}",
    "steps:",
    '  - {id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{ inputs.who }}?",',
    "     output_to: ok}",
    "  - {id: done, type: return, value: \"${{ state.ok ? 'hello ' + inputs.who : 'no' }}\"}",
    "",
  ].join("\n");

  const registered = await call(definitions, "RegisterDefinition", { yaml });
  const started = await call(workflows, "StartWorkflow", {
    definition_name: name,
    inputs: { fields: { who: { stringValue: "node" } } },
  });

  let run;
  for (let attempt = 0; attempt < 200; attempt++) {
    run = (await call(workflows, "GetWorkflow", { workflow_id: started.workflow_id })).workflow;
    if (run.status === "RUN_STATUS_WAITING" && run.pending_actions.length > 0) break;
    await sleep(50);
  }
  const action = run.pending_actions[0];

  const submitted = await call(workflows, "SubmitResult", {
    workflow_id: action.workflow_id,
    action_id: action.action_id,
    result: { boolValue: true },
  });
  const finished = (await call(workflows, "GetWorkflow", { workflow_id: started.workflow_id }))
    .workflow;

  let notFound;
  try {
    await call(workflows, "GetWorkflow", { workflow_id: "no-such-run" });
  } catch (error) {
    const details = error.metadata.get("grpc-status-details-bin");
    notFound = { code: error.code, details: error.details, rich_details: details.length };
  }

  console.log(
    JSON.stringify({
      registered: {
        name: registered.definition.name,
        version: Number(registered.definition.version),
        created: registered.created,
        workflow_type: registered.definition.workflow_type,
      },
      started: { workflow_id: started.workflow_id, workflow_type: started.workflow_type },
      waiting: {
        status: run.status,
        current_step: run.current_step,
        action: {
          step_id: action.step_id,
          type: action.type,
          message: fromValue({ kind: "structValue", structValue: action.parameters }).message,
          workflow_id: action.workflow_id,
        },
      },
      submitted: { status: submitted.status, result: fromValue(submitted.result) },
      finished: {
        status: finished.status,
        result: fromValue(finished.result),
        org_id: finished.org_id,
        history: finished.history.map((h) => [h.step_id, h.outcome]),
      },
      not_found: notFound,
    }),
  );
  definitions.close();
  workflows.close();
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
