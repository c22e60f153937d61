// A program against the client openapi-typescript generates from the API's document (api.d.ts) and
// openapi-fetch: tsc compiles it only if the document's enums, operations and bodies are what it uses.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Group = components["schemas"]["GroupView"];
type Job = components["schemas"]["JobView"];

const protectedState: Group["state"] = "Protected";
// @ts-expect-error: a group state the document does not list
const bogusState: Group["state"] = "Bogus";
const health: NonNullable<Group["health"]> = "Warning";
const replication: Group["replicationState"] = "disconnected";
const operations: Group["allowedOperations"] = ["test", "drill"];
// @ts-expect-error: an operation the document does not list
const bogusOperation: Group["allowedOperations"] = ["teleport"];
const failed: Job["state"] = "Failed";

export async function startTestFailover(baseUrl: string, group: string): Promise<Job["type"] | undefined> {
  const client = createClient<paths>({ baseUrl });
  const { data } = await client.POST("/groups/{group}/failover", {
    params: { path: { group } },
    body: { type: "test", recoveryPoint: "latestProcessed" },
  });
  // @ts-expect-error: a failover body without its type is not one the document allows
  await client.POST("/groups/{group}/failover", { params: { path: { group } }, body: {} });
  const jobs = await client.GET("/jobs", { params: { query: { state: "Failed", limit: 20 } } });
  return data?.type ?? jobs.data?.jobs?.[0]?.type;
}

export const used = [protectedState, bogusState, health, replication, operations, bogusOperation, failed];
