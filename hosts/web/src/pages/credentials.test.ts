import { describe, expect, it } from "vitest";
import {
  ROLES,
  SCOPES,
  apiKeyUsage,
  createAccountBody,
  createCredentialBody,
  credentialStatus,
  serviceTokenUsage,
  createKeyBody,
  dayInput,
  emptyKeyDraft,
  expiresAt,
  expiryText,
  scopesInOrder,
  spendCapText,
} from "./credentials";

const now = Date.parse("2026-12-07T10:00:00Z");

describe("scopes", () => {
  it("lists every scope of the contract once, in the form's order", () => {
    expect(SCOPES).toEqual(["read", "allocations", "storage", "billing"]);
    expect(scopesInOrder(["billing", "read", "billing"])).toEqual(["read", "billing"]);
  });
});

describe("expiresAt", () => {
  it("is nothing for never, and now plus the days chosen", () => {
    expect(expiresAt({ choice: "never", date: "2027-01-01" }, now)).toEqual({});
    expect(expiresAt({ choice: "30", date: "" }, now)).toEqual({ at: "2027-01-06T10:00:00.000Z" });
  });

  it("is the last moment of a chosen day in local time, and asks for the day when none is chosen", () => {
    const r = expiresAt({ choice: "date", date: "2027-03-04" }, now);
    expect(r).toEqual({ at: new Date(2027, 2, 4, 23, 59, 59, 999).toISOString() });
    expect(expiresAt({ choice: "date", date: "" }, now)).toEqual({ error: "Choose the day it expires." });
  });

  it("writes days as the date field does", () => {
    expect(dayInput(new Date(2027, 0, 5, 12).getTime())).toBe("2027-01-05");
  });
});

describe("createKeyBody", () => {
  it("starts from the active project, read only, without expiry or cap", () => {
    expect(createKeyBody({ ...emptyKeyDraft("p1"), name: " laptop " }, now)).toEqual({
      body: { name: "laptop", project_id: "p1", scopes: ["read"] },
    });
  });

  it("sends the scopes in order, the expiry and the cap in minor units", () => {
    expect(
      createKeyBody(
        {
          name: "ci",
          projectId: "p2",
          scopes: ["storage", "read"],
          expiry: { choice: "7", date: "" },
          spendCap: "12.5",
        },
        now,
      ),
    ).toEqual({
      body: {
        name: "ci",
        project_id: "p2",
        scopes: ["read", "storage"],
        expires_at: "2026-12-14T10:00:00.000Z",
        spend_cap_minor: 1250,
      },
    });
  });

  it("sends an empty name and no scope as they are, for the API to refuse with its own words", () => {
    expect(createKeyBody({ ...emptyKeyDraft("p1"), scopes: [] }, now)).toEqual({
      body: { name: "", project_id: "p1", scopes: [] },
    });
  });

  it("leaves a cap of 0 out (no cap) and refuses an amount that is not one at its field", () => {
    expect(createKeyBody({ ...emptyKeyDraft("p1"), name: "k", spendCap: "0" }, now)).toEqual({
      body: { name: "k", project_id: "p1", scopes: ["read"] },
    });
    expect(createKeyBody({ ...emptyKeyDraft("p1"), name: "k", spendCap: "12,50" }, now)).toEqual({
      field: "spend_cap_minor",
      message: "Enter an amount such as 50 or 12.50, or leave it empty.",
    });
    expect(
      createKeyBody({ ...emptyKeyDraft("p1"), name: "k", expiry: { choice: "date", date: "" } }, now),
    ).toEqual({ field: "expires_at", message: "Choose the day it expires." });
  });
});

describe("how a key is listed", () => {
  it("says never, the time, or that it expired", () => {
    expect(expiryText(undefined, now)).toBe("never");
    expect(expiryText("2026-12-08T10:00:00Z", now)).not.toMatch(/expired/);
    expect(expiryText("2026-12-06T10:00:00Z", now)).toMatch(/^expired /);
  });

  it("gives the spend cap a day in the ledger's currency, or none", () => {
    expect(spendCapText({ spend_cap_minor: 0 }, "usd")).toBe("none");
    expect(spendCapText({ spend_cap_minor: 5000 }, "usd")).toMatch(/^\$50\.00 a day$/);
    expect(spendCapText({ spend_cap_minor: 5000 }, undefined)).toBe("50.00 a day");
  });
});

describe("apiKeyUsage", () => {
  it("signs the CLI in from standard input and calls the API with the bearer key in its project", () => {
    const u = apiKeyUsage("https://gpuaas.example.com", "p1");
    expect(u.cli).toBe("gpuaas login --api https://gpuaas.example.com --api-key-stdin");
    expect(u.curl).toContain('-H "Authorization: Bearer $GPUAAS_API_KEY"');
    expect(u.curl).toContain('-H "X-Project-ID: p1"');
    expect(u.curl).toContain("https://gpuaas.example.com/api/v1/allocations");
  });
});

describe("service accounts", () => {
  it("offers every role of the contract, a member first", () => {
    expect(ROLES).toEqual(["viewer", "member", "admin"]);
    expect(createAccountBody({ name: "  ci runner ", role: "viewer" })).toEqual({
      name: "ci runner",
      role: "viewer",
    });
  });

  it("asks for a secret with an expiry only when it expires", () => {
    expect(createCredentialBody({ choice: "never", date: "" }, now)).toEqual({ body: {} });
    expect(createCredentialBody({ choice: "730", date: "" }, now)).toEqual({
      body: { expires_at: "2028-12-06T10:00:00.000Z" },
    });
    expect(createCredentialBody({ choice: "date", date: "" }, now)).toEqual({
      field: "expires_at",
      message: "Choose the day it expires.",
    });
  });

  it("says whether a secret still works", () => {
    expect(credentialStatus({}, now)).toEqual({ active: true, text: "active" });
    expect(credentialStatus({ expires_at: "2027-01-01T00:00:00Z" }, now).text).toMatch(/^active, expires /);
    expect(credentialStatus({ expires_at: "2026-12-01T00:00:00Z" }, now)).toMatchObject({ active: false });
    expect(credentialStatus({ expires_at: "2026-12-01T00:00:00Z" }, now).text).toMatch(/^expired /);
    expect(
      credentialStatus({ revoked_at: "2026-12-07T09:00:00Z", expires_at: "2026-12-01T00:00:00Z" }, now).text,
    ).toMatch(/^revoked /);
  });

  it("exchanges the client id and the secret from the environment for a token, then calls with it", () => {
    const u = serviceTokenUsage("https://gpuaas.example.com", "sa1", "p1");
    expect(u.exchange).toBe(
      "ACCESS_TOKEN=$(curl -s -X POST https://gpuaas.example.com/api/v1/auth/service-token \\\n" +
        '     -H "Content-Type: application/json" \\\n' +
        '     -d "{\\"client_id\\": \\"sa1\\", \\"client_secret\\": \\"$GPUAAS_CLIENT_SECRET\\"}" \\\n' +
        "     | jq -r .access_token)",
    );
    expect(u.call).toContain('-H "Authorization: Bearer $ACCESS_TOKEN"');
    expect(u.call).toContain('-H "X-Project-ID: p1"');
  });
});
