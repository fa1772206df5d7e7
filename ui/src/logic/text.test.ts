import { describe, expect, it } from "vitest";
import type { ErrorCode } from "../bindings";
import { describeError, frozenText, linkDownText, heldForText, observedHoldText, observeText, RESTORE_TEXT, sentence, STATUS_TEXT, statusNote, verifiedByText } from "./text";

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

describe("observe mode wording", () => {
  const now = Date.parse("2026-03-01T12:10:00Z");
  it("says who switched to observe mode, when and why", () => {
    const s = observeText({ by: "ada", at: "2026-03-01T12:08:00Z", reason: " pilot week " }, now);
    expect(s).toMatch(/^Switched by ada at .+ \(2 min ago\): “pilot week”$/);
    expect(observeText({}, now)).toBe("Switched by an unknown user");
  });
  it("names the reasons an observed write would have been held for", () => {
    expect(observedHoldText(["external", "third_party_bearer"])).toBe("would have been held: external, third party pays");
    expect(observedHoldText(["uncovered"], true)).toBe("would have been held: No verified way to put it back");
    expect(observedHoldText([])).toBe("would have been held");
    expect(observedHoldText(null)).toBe("would have been held");
    expect(heldForText(["external", "uncovered"], true)).toBe("Reaches something outside every system we run; No verified way to put it back");
    expect(heldForText([])).toBe("");
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

describe("errors as sentences", () => {
  const api = (status: number, code: ErrorCode, message: string, field: string | null = null) =>
    describeError({ kind: "api", status, code, message, field });
  it("says a refusal as a sentence, never as a status and a code", () => {
    const already = api(409, "already_approved", "`rita` approved write `w-1` already");
    expect(already).toBe("You have already approved this write. It now needs an approval from another reviewer.");
    expect(api(409, "frozen", "the gate is frozen by `lee`")).toMatch(/^The gate is frozen: nothing can be approved/);
    expect(api(422, "reason_required", "approving write `w-1` needs a written reason", "comment")).toMatch(/needs a written reason/);
    expect(api(409, "wrong_status", "write `w-1` is executed, not held: it is executed")).toBe(
      "This write cannot be decided any more. Write w-1 is executed, not held: it is executed.",
    );
    for (const text of [already, api(403, "forbidden", "no"), api(400, "invalid", "must not be empty", "reason"), api(418, "unknown", "odd")]) {
      expect(text).not.toMatch(/\(\d{3} /);
      expect(text).not.toMatch(/`/);
      expect(text).toMatch(/[.]$/);
    }
  });
  it("says an unreachable gate plainly, without the HTTP client's error chain", () => {
    const raw =
      "error sending request for url (http://127.0.0.1:7432/v1/writes?status=held): client error (Connect): tcp connect error: Connection refused (os error 111)";
    const text = describeError({ kind: "unreachable", url: "http://127.0.0.1:7432", message: raw });
    expect(text).toBe("The gate at http://127.0.0.1:7432 cannot be reached: nothing answers at that address; is the gate running? Nothing was done.");
    expect(text).not.toMatch(/os error|tcp|client error|request for url/);
    expect(describeError({ kind: "unreachable", url: "https://g", message: "operation timed out" })).toMatch(/did not answer in time/);
    expect(linkDownText("the gate at `http://x` could not be reached: error sending request: Connection refused")).toBe(
      "Live updates stopped: nothing answers at that address; is the gate running?",
    );
  });
  it("makes a sentence of a gate's message", () => {
    expect(sentence("write `w-1` is held")).toBe("Write w-1 is held.");
    expect(sentence("Done.")).toBe("Done.");
    expect(sentence("  ")).toBe("");
  });
});
