import { describe, expect, it } from "vitest";
import type { BlastEntry, RestoreItem, WriteRecord } from "../bindings";
import { rollbackAccount, rollbackVerdict } from "./rollback";

const e = (resource: string, over: Partial<BlastEntry> = {}): BlastEntry =>
  ({ resource, depth: 0, reach: "controlled", bearer: "institution", covered: true, restored_by: [], ...over }) as BlastEntry;
const item = (resource: string, status: RestoreItem["status"]): RestoreItem => ({ resource, status });

type W = Pick<WriteRecord, "rollback" | "decision" | "connector">;
const write = (items: RestoreItem[], radius: BlastEntry[], connector = "fs"): W =>
  ({
    connector,
    rollback: { verified: items.every((i) => i.status === "restored"), items, forced: false },
    decision: { decision: "hold", reasons: [], blast_radius: radius, bearers: [], evidence: [], steps: [] },
  }) as unknown as W;

describe("a rollback's account", () => {
  it("lists restored, not restored and never restorable, in that order", () => {
    const a = rollbackAccount(
      write(
        [item("fs:/srv/a", "restored"), item("fs:/srv/b", "drift")],
        [e("fs:/srv/a"), e("fs:/srv/b"), e("licenses:4411", { reach: "external", covered: false, bearer: "customer" })],
      ),
    );
    expect(a?.restored.map((i) => i.resource)).toEqual(["fs:/srv/a"]);
    expect(a?.notRestored.map((i) => i.resource)).toEqual(["fs:/srv/b"]);
    expect(a?.never.map((i) => i.resource)).toEqual(["licenses:4411"]);
  });

  it("never calls everything verified while something external stays as the write left it", () => {
    const a = rollbackAccount(
      write([item("account:4411", "restored")], [e("account:4411"), e("licenses:4411", { reach: "external", covered: false })]),
    );
    expect(a).not.toBeNull();
    const said = rollbackVerdict(true, a!);
    expect(said).toMatch(/^Rolled back and verified/);
    expect(said).not.toMatch(/every item matches/);
    expect(said).toMatch(/1 thing in its blast radius could not be put back/);
  });

  it("says every item matches only when nothing lies beyond the rollback", () => {
    const a = rollbackAccount(write([item("fs:/srv/a", "restored")], [e("fs:/srv/a")]));
    expect(rollbackVerdict(true, a!)).toBe("Rolled back and verified: every item matches what was captured before the write.");
  });

  it("counts an http request as something no rollback unsends", () => {
    const a = rollbackAccount(write([item("api:renewal", "restored")], [e("api:renewal")], "http"));
    expect(a?.never[0].resource).toBe("the request");
  });

  it("does not list as never restorable what the report itself covers", () => {
    const a = rollbackAccount(write([item("fs:/srv/a", "failed")], [e("fs:/srv/a", { covered: false })]));
    expect(a?.never).toEqual([]);
    expect(rollbackVerdict(false, a!)).toMatch(/did NOT verify: 1 of 1 item not restored/);
  });

  it("is null without a report", () => {
    expect(rollbackAccount({ ...write([], []), rollback: undefined } as W)).toBeNull();
  });
});
