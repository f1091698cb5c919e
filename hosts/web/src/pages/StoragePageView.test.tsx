import { describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { ApiError } from "../api/errors";
import { StoragePageView, type StoragePageViewProps } from "./StoragePageView";

const props = (over: Partial<StoragePageViewProps> = {}): StoragePageViewProps => ({
  projectName: "default",
  dir: "/datasets",
  onOpen: vi.fn(),
  listing: { status: "success", data: { path: "/datasets", entries: [] } },
  usage: {
    status: "success",
    data: {
      used_bytes: 1024,
      reserved_bytes: 0,
      quota_bytes: 1024 ** 3,
      free_bytes: 1024 ** 3 - 1024,
      files: 1,
      folders: 1,
    },
  },
  pager: { page: 1, hasPrev: false, hasNext: false, onPrev: vi.fn(), onNext: vi.fn() },
  folderName: "",
  onFolderName: vi.fn(),
  onMkdir: vi.fn(),
  mkdirPending: false,
  mkdirError: null,
  mkdirCooldown: 0,
  uploads: [],
  onFiles: vi.fn(),
  onDismissUploads: vi.fn(),
  renameTo: "",
  onRenameTo: vi.fn(),
  onRenameOpen: vi.fn(),
  onRename: vi.fn(),
  renamePending: false,
  renameError: null,
  onDelete: vi.fn(),
  onDeleteOpen: vi.fn(),
  deletePending: false,
  deleteError: null,
  onDownload: vi.fn(),
  downloadError: null,
  ...over,
});

const show = (p: StoragePageViewProps) =>
  render(
    <MemoryRouter>
      <StoragePageView {...p} />
    </MemoryRouter>,
  );

describe("StoragePageView", () => {
  it("shows usage against the quota and an empty folder", () => {
    show(props());
    expect(screen.getByTestId("storage-usage").textContent).toContain("1.0 KiB of 1.0 GiB used");
    expect(screen.getByRole("heading", { name: "This folder is empty" })).toBeTruthy();
  });

  it("puts a path error under the folder name and the quota's numbers on the upload", () => {
    show(
      props({
        mkdirError: new ApiError({ status: 400, code: "storage_path_traversal", field: "path" }),
        uploads: [
          {
            id: "u1",
            name: "big.bin",
            size: 10,
            loaded: 0,
            status: "failed",
            error: new ApiError({
              status: 400,
              code: "storage_quota_exceeded",
              details: { used_bytes: 1024 ** 3, limit_bytes: 1024 ** 3, requested_bytes: 10 },
            }),
          },
        ],
      }),
    );
    expect(screen.getByLabelText("Folder name").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getAllByRole("alert").map((a) => a.textContent)).toEqual([
      "That path is not allowed.",
      "big.bin: The project's storage quota is full. 1.0 GiB of 1.0 GiB used; this file needs 10 B.",
    ]);
  });

  it("says when the folder does not exist", () => {
    show(
      props({
        listing: { status: "error", error: new ApiError({ status: 404, code: "storage_object_not_found" }) },
      }),
    );
    expect(screen.getByRole("heading", { name: "This folder does not exist" })).toBeTruthy();
    expect(screen.queryByLabelText("Upload files")).toBeNull();
  });
});
