import { describe, expect, it } from "vitest";
import type { Allocation } from "../api/types";
import { sshConfigEntry } from "./AllocationPage";

const base = {
  id: "01a251bd-95f9-763f-9883-b95ec4666f91",
  access: { host: "10.0.0.7", port: 22, user: "ga_95f9763f", command: "ssh -p 22 ga_95f9763f@10.0.0.7" },
} as Allocation;

describe("sshConfigEntry", () => {
  it("uses the CLI's alias and pins the node's host key when there is one", () => {
    const entry = sshConfigEntry({
      ...base,
      access: { ...base.access!, host_key: "ssh-ed25519 AAAAC3Nz\n" },
    });
    expect(entry).toContain("Host gpuaas.c4666f91\n  HostName 10.0.0.7\n  Port 22\n  User ga_95f9763f\n");
    expect(entry).toContain("  HostKeyAlias gpuaas.c4666f91\n");
    expect(entry.endsWith("# gpuaas.c4666f91 ssh-ed25519 AAAAC3Nz\n")).toBe(true);
  });

  it("leaves the known_hosts line out when the agent reported no key", () => {
    const entry = sshConfigEntry(base);
    expect(entry).toContain("Host gpuaas.c4666f91\n");
    expect(entry).not.toContain("known_hosts");
  });

  it("is empty without access", () => {
    expect(sshConfigEntry({ ...base, access: undefined })).toBe("");
  });
});
