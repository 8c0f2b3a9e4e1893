// Runs turns with the TypeScript Codex SDK (@openai/codex-sdk) against
// spool: `spool exec` stands in for the codex binary (codexPathOverride).
// Driven by tests/python/test_codex_ts_sdk.py, which scripts the upstream.
//
// argv[2] is a JSON spec: {binary, baseUrl, model?, threadId?, streamed?,
// outputSchema?, prompts: [..]}. Prints one JSON object: {threadId, turns:
// [{finalResponse, items, usage, events?} | {error}]}.
import { Codex } from "@openai/codex-sdk";

const spec = JSON.parse(process.argv[2]);
const codex = new Codex({ codexPathOverride: spec.binary, baseUrl: spec.baseUrl, apiKey: "test" });
const options = { model: spec.model, skipGitRepoCheck: true, sandboxMode: "read-only" };
const thread = spec.threadId ? codex.resumeThread(spec.threadId, options) : codex.startThread(options);
const turns = [];
for (const prompt of spec.prompts) {
  try {
    if (spec.streamed) {
      const { events } = await thread.runStreamed(prompt, { outputSchema: spec.outputSchema });
      const seen = [];
      for await (const event of events) seen.push(event);
      const completed = seen.filter((e) => e.type === "item.completed").map((e) => e.item);
      const messages = completed.filter((i) => i.type === "agent_message");
      turns.push({
        events: seen,
        items: completed,
        finalResponse: messages.length ? messages[messages.length - 1].text : "",
        usage: seen.find((e) => e.type === "turn.completed")?.usage ?? null,
      });
    } else {
      turns.push(await thread.run(prompt, { outputSchema: spec.outputSchema }));
    }
  } catch (error) {
    turns.push({ error: String(error?.message ?? error) });
  }
}
console.log(JSON.stringify({ threadId: thread.id, turns }));
