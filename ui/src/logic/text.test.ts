import { describe, expect, it } from "vitest";
import { frozenText, RESTORE_TEXT, STATUS_TEXT, statusNote, verifiedByText } from "./text";

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

describe("statuses in plain words", () => {
  it("says what the statuses that wait for a person mean", () => {
    expect(STATUS_TEXT.outcome_unknown).toBe("outcome unknown — an incident lead must check");
    expect(STATUS_TEXT.rollback_failed).toBe("rollback did not verify");
    expect(statusNote("outcome_unknown")).toMatch(/incident lead/);
    expect(statusNote("held")).toBeNull();
  });
});

describe("verifiedByText", () => {
  it("names the observer the gate recorded, with what it saw", () => {
    expect(
      verifiedByText({ kind: "snapshot", status: "verified", verified_by: "the `fs` connector, from its own capture", detail: "sealed" }),
    ).toBe("the `fs` connector, from its own capture: sealed");
  });
  it("never reads an unobserved item as verified by someone", () => {
    const text = verifiedByText({ kind: "external_copy", status: "unverifiable", verified_by: null, detail: null });
    expect(text).toMatch(/^nobody verified it/);
    expect(verifiedByText({ kind: "window", status: "verified" })).toMatch(/declared by the proposal/);
  });
});

describe("restore items in plain words", () => {
  it("never calls a put back whose contents were not checked restored", () => {
    expect(RESTORE_TEXT.unverified).toBe("put back; contents not verified (no seal)");
    expect(RESTORE_TEXT.restored).toMatch(/verified/);
    for (const [status, text] of Object.entries(RESTORE_TEXT)) {
      if (status !== "restored") expect(text).not.toMatch(/^restored/);
    }
  });
});
