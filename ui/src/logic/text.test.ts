import { describe, expect, it } from "vitest";
import { frozenText } from "./text";

describe("frozenText", () => {
  const now = Date.parse("2026-03-01T12:10:00Z");
  it("says who, when and why", () => {
    const s = frozenText({ by: "lee", at: "2026-03-01T12:05:00Z", reason: " incident 42 " }, now);
    expect(s).toMatch(/^Frozen by lee at .+ \(5 min ago\): “incident 42”$/);
  });
  it("copes with missing fields", () => {
    expect(frozenText({}, now)).toBe("Frozen by an unknown user");
    expect(frozenText({ by: "lee", at: "not a date", reason: "" }, now)).toBe("Frozen by lee");
  });
});
