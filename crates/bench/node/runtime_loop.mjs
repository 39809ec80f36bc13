// The Node.js baseline of baton's benchmarks: the usual alternative for a function like
// run-log-writer in Node, a handler that creates a DynamoDB client (AWS SDK for JavaScript v3) at
// start-up and writes each Step Functions status change to the runs table with one conditional
// PutItem, run through a minimal Lambda Runtime API loop (what the managed Node.js runtime does,
// without its extras). The same work as crates/bench/python/runtime_loop.py.
//
// Reads AWS_LAMBDA_RUNTIME_API, AWS_ENDPOINT_URL (the SDK honours it) and BATON_RUNS_TABLE.
import http from "node:http";

import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";

const RUNTIME = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/`;
const TABLE = process.env.BATON_RUNS_TABLE;
const dynamodb = new DynamoDBClient({});

async function handler(event) {
  const detail = event.detail;
  const stamp = detail.stopDate ?? detail.startDate;
  await dynamodb.send(
    new PutItemCommand({
      TableName: TABLE,
      Item: {
        pk: { S: `run#${detail.stateMachineArn}` },
        sk: { S: `${String(stamp).padStart(13, "0")}#${detail.executionArn}#${detail.status}` },
        status: { S: detail.status },
      },
      ConditionExpression: "attribute_not_exists(pk)",
    }),
  );
  return { recorded: detail.executionArn, status: detail.status };
}

// The runtime API over node:http, as the managed runtime's client does (fetch would load undici
// at the first call and flatter Rust's cold start).
function call(method, url, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method }, (answer) => {
      const chunks = [];
      answer.on("data", (chunk) => chunks.push(chunk));
      answer.on("end", () => resolve({ headers: answer.headers, body: Buffer.concat(chunks) }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

for (;;) {
  const next = await call("GET", RUNTIME + "next");
  const requestId = next.headers["lambda-runtime-aws-request-id"];
  const event = JSON.parse(next.body);
  let body;
  let outcome;
  try {
    body = JSON.stringify(await handler(event));
    outcome = "/response";
  } catch (e) {
    // The managed runtime reports any error the same way.
    body = JSON.stringify({ errorType: e.name, errorMessage: String(e.message) });
    outcome = "/error";
  }
  await call("POST", RUNTIME + requestId + outcome, body);
}
