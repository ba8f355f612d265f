// The last step of a permission peer: runs the attempt and prints its
// outcome as one line of JSON, the error's name and message or "ok".

/** Prints `{ name: "ok" }`, or the name and message of what `attempt` threw. */
export async function report(attempt: () => Promise<void>): Promise<void> {
  try {
    await attempt();
    console.log(JSON.stringify({ name: "ok" }));
  } catch (err) {
    const e = err as Error;
    console.log(JSON.stringify({ name: e.name, message: e.message }));
  }
}
