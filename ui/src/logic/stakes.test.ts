import { describe, expect, it } from "vitest";
import type { BlastEntry } from "../bindings";
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
  it("says a request cannot be unsent for http writes only", () => {
    expect(sentText("http")).toMatch(/cannot be unsent/);
    expect(sentText("fs")).toBeNull();
  });
});
