import { describe, expect, it } from "vitest";
import type { BlastEntry, Reason } from "../bindings";
import { cannotUndo, sentText } from "./stakes";

const e = (resource: string, over: Partial<BlastEntry> = {}): BlastEntry =>
  ({ resource, depth: 0, reach: "controlled", bearer: "institution", covered: true, ...over }) as BlastEntry;

describe("what cannot be undone", () => {
  it("lists what no verified step puts back, third parties first, then external", () => {
    const list = cannotUndo({
      blast_radius: [
        e("fs:/a", { covered: true }),
        e("report:m", { reach: "observed", covered: false }),
        e("mail:letter", { reach: "external", covered: false }),
        e("crm:1", { reach: "observed", covered: false, bearer: "customer" }),
        e("fs:/cust", { covered: true, bearer: "customer" }),
      ],
    });
    expect(list.map((x) => x.resource)).toEqual(["crm:1", "mail:letter", "report:m"]);
    expect(list[1].why).toMatch(/outside every system we run/);
  });
  it("names the rollback context a write takes with it, though every resource is covered", () => {
    const list = cannotUndo({
      blast_radius: [e("fs:/home/dev"), e("fs:/home/dev/app/.git")],
      reasons: [
        {
          code: "evidence_in_blast_radius",
          detail: "`git-objects` is held at `fs:/home/dev/app/.git`, inside what this write changes",
          evidence: "git-objects",
          path: ["fs:/home/dev", "fs:/home/dev/app/.git"],
        } as Reason,
        { code: "third_party_bearer", detail: "x", resource: "fs:/home/dev" } as Reason,
      ],
    });
    expect(list.map((x) => x.resource)).toEqual(["fs:/home/dev/app/.git"]);
    expect(list[0].why).toMatch(/nothing to restore from/);
  });
  it("says a request cannot be unsent for http writes only", () => {
    expect(sentText("http")).toMatch(/cannot be unsent/);
    expect(sentText("fs")).toBeNull();
  });
});
