import { describe, expect, it } from "vitest";
import type { KindAudit } from "../bindings";
import { countsText, notReversible, PATH_TEXT } from "./report";

describe("the report's words", () => {
  it("calls a manual step, no path or an unrestored part not reversible, and nothing else", () => {
    const not = (["no_path", "manual_step", "leaves_unrestored", "aspirational", "real"] as const).filter((v) =>
      notReversible({ rollback: v }),
    );
    expect(not).toEqual(["no_path", "manual_step", "leaves_unrestored"]);
    expect(PATH_TEXT.manual_step).toMatch(/cleanup team/);
  });
  it("counts only what happened", () => {
    const counts = { seen: 3, held: 2, refused: 0, ran: 1, ran_unreviewed: 0, rolled_back: 1 };
    expect(countsText({ counts } as Pick<KindAudit, "counts">)).toBe("seen 3 · held 2 · ran 1 · rolled back 1");
  });
});
