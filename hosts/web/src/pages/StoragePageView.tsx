import { Link } from "react-router";
import type { StorageEntry, StorageListing, StorageUsage } from "../api/types";
import { bytes, detailedMessage, isApiError } from "../api/errors";
import { crumbs } from "../api/queries/storage";
import { ActionButton, ConfirmDialog, Field, FormDialog } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable, type Pager } from "../components/Table";
import { dateTime } from "../components/format";
import { usePageHeading } from "../components/hooks";

export interface Upload {
  id: string;
  name: string;
  size: number;
  loaded: number;
  status: "waiting" | "uploading" | "done" | "failed" | "cancelled";
  error?: unknown;
  cancel?: () => void;
}

export interface StoragePageViewProps {
  projectName: string;
  dir: string;
  onOpen: (path: string) => void;
  listing: Loadable<StorageListing>;
  usage: Loadable<StorageUsage>;
  pager: Pager;
  folderName: string;
  onFolderName: (v: string) => void;
  onMkdir: () => void;
  mkdirPending: boolean;
  mkdirError: unknown;
  mkdirCooldown: number;
  uploads: Upload[];
  onFiles: (files: File[]) => void;
  onDismissUploads: () => void;
  renameTo: string;
  onRenameTo: (v: string) => void;
  onRenameOpen: (e: StorageEntry) => void;
  onRename: (e: StorageEntry) => Promise<unknown>;
  renamePending: boolean;
  renameError: unknown;
  onDelete: (e: StorageEntry) => Promise<unknown>;
  onDeleteOpen: () => void;
  deletePending: boolean;
  deleteError: unknown;
  onDownload: (e: StorageEntry) => void;
  downloading?: string;
  downloadError: unknown;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A storage error as a sentence for the field it belongs to. */
function fieldMessage(e: unknown): string | undefined {
  if (!e) return undefined;
  if (!isApiError(e)) return "Something went wrong.";
  if (e.status === 429) return `${e.human} Wait ${e.retryAfter ?? 1} s.`;
  return detailedMessage(e);
}

function UsageCard({ usage }: { usage: Loadable<StorageUsage> }) {
  if (usage.status !== "success") return null;
  const u = usage.data;
  const pct = u.quota_bytes > 0 ? Math.min(100, Math.round((u.used_bytes / u.quota_bytes) * 100)) : 0;
  return (
    <div className="card usage" data-testid="storage-usage">
      <p style={{ margin: 0 }}>
        <strong>{bytes(u.used_bytes)}</strong> of {bytes(u.quota_bytes)} used ({pct} %)
        {u.reserved_bytes > 0 && (
          <span className="muted"> · {bytes(u.reserved_bytes)} in uploads under way</span>
        )}
      </p>
      <meter
        min={0}
        max={u.quota_bytes || 1}
        value={u.used_bytes + u.reserved_bytes}
        high={(u.quota_bytes || 1) * 0.9}
        aria-label="Storage used of the quota"
      />
      <p className="muted" style={{ margin: 0 }}>
        {plural(u.files, "file")} in {plural(u.folders, "folder")} · {bytes(u.free_bytes)} free
      </p>
    </div>
  );
}

function UploadList({ uploads, onDismiss }: { uploads: Upload[]; onDismiss: () => void }) {
  if (uploads.length === 0) return null;
  const settled = uploads.some((u) => u.status !== "uploading" && u.status !== "waiting");
  return (
    <section aria-labelledby="uploads-h" className="card" style={{ marginBottom: 16 }}>
      <div className="page-head" style={{ marginBottom: 8 }}>
        <h2 id="uploads-h" style={{ margin: 0 }}>
          Uploads
        </h2>
        {settled && (
          <button type="button" onClick={onDismiss}>
            Clear finished
          </button>
        )}
      </div>
      <ul className="uploads">
        {uploads.map((u) => {
          const pct = u.size > 0 ? Math.floor((u.loaded / u.size) * 100) : u.status === "done" ? 100 : 0;
          return (
            <li key={u.id} data-testid="upload">
              <span className="mono">{u.name}</span>{" "}
              <progress max={100} value={pct} aria-label={`Upload of ${u.name}`} />{" "}
              <span>
                {u.status === "waiting" && "waiting"}
                {u.status === "uploading" && `${pct} % of ${bytes(u.size)}`}
                {u.status === "done" && "uploaded"}
                {u.status === "cancelled" && "cancelled"}
                {u.status === "failed" && "failed"}
              </span>{" "}
              {u.cancel && (u.status === "uploading" || u.status === "waiting") && (
                <button type="button" onClick={u.cancel} aria-label={`Cancel upload of ${u.name}`}>
                  Cancel
                </button>
              )}
              {u.status === "failed" && (
                <p className="inline-error" role="alert">
                  {u.name}: {fieldMessage(u.error)}
                </p>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

export function StoragePageView(p: StoragePageViewProps) {
  const h = usePageHeading("Storage");
  const trail = crumbs(p.dir);
  const missing =
    p.listing.status === "error" &&
    isApiError(p.listing.error) &&
    (p.listing.error.code === "storage_object_not_found" ||
      p.listing.error.code === "storage_path_traversal");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Storage
      </h1>
      <p className="muted">
        Files of the project {p.projectName}. Nodes can sync a folder of them (request a node with storage
        sync).
      </p>
      <UsageCard usage={p.usage} />

      <nav aria-label="Folder" className="crumbs">
        <ol>
          <li>
            {trail.length === 0 ? (
              <span aria-current="page">Top folder</span>
            ) : (
              <Link to="/storage">Top folder</Link>
            )}
          </li>
          {trail.map((c, i) => (
            <li key={c.path}>
              {i === trail.length - 1 ? (
                <span aria-current="page">{c.name}</span>
              ) : (
                <Link to={`/storage?path=${encodeURIComponent(c.path)}`}>{c.name}</Link>
              )}
            </li>
          ))}
        </ol>
      </nav>

      {!missing && (
        <div className="toolbar storage-tools">
          <form
            className="row"
            aria-label="New folder"
            onSubmit={(e) => {
              e.preventDefault();
              p.onMkdir();
            }}
          >
            <Field label="Folder name" error={fieldMessage(p.mkdirError)}>
              {(f) => (
                <input
                  {...f}
                  value={p.folderName}
                  onChange={(e) => p.onFolderName(e.target.value)}
                  required
                  maxLength={255}
                  autoComplete="off"
                />
              )}
            </Field>
            <div className="field">
              <ActionButton type="submit" pending={p.mkdirPending} cooldown={p.mkdirCooldown}>
                Create folder
              </ActionButton>
            </div>
          </form>
          <div className="field">
            <label htmlFor="upload-files">Upload files</label>
            <input
              id="upload-files"
              type="file"
              multiple
              onChange={(e) => {
                const files = Array.from(e.target.files ?? []);
                e.target.value = "";
                if (files.length) p.onFiles(files);
              }}
            />
          </div>
        </div>
      )}

      <UploadList uploads={p.uploads} onDismiss={p.onDismissUploads} />
      <ActionError error={p.downloadError} />

      {missing ? (
        <Empty title="This folder does not exist">
          <p>It may have been renamed or deleted.</p>
          <p>
            <Link to="/storage">Go to the top folder</Link>
          </p>
        </Empty>
      ) : (
        <StateView
          state={p.listing}
          what="the folder"
          isEmpty={(l) => l.entries.length === 0}
          empty={
            <Empty title={trail.length ? "This folder is empty" : "No files yet"}>
              <p>Upload files or create a folder above.</p>
            </Empty>
          }
        >
          {(l) => (
            <DataTable
              caption={`Files in ${trail.length ? p.dir : "the top folder"}`}
              rows={l.entries}
              rowKey={(e) => e.path}
              pager={p.pager}
              columns={[
                {
                  header: "Name",
                  cell: (e) =>
                    e.kind === "dir" ? (
                      <Link
                        to={`/storage?path=${encodeURIComponent(e.path)}`}
                        aria-label={`Folder ${e.name}`}
                        className="entry-name"
                      >
                        {e.name}/
                      </Link>
                    ) : (
                      <span className="entry-name">{e.name}</span>
                    ),
                },
                {
                  header: "Size",
                  numeric: true,
                  cell: (e) => (e.kind === "dir" ? "—" : bytes(e.size_bytes)),
                },
                { header: "Modified", cell: (e) => dateTime(e.updated_at) },
                {
                  header: "Actions",
                  cell: (e) => (
                    <div className="row actions-cell">
                      {e.kind === "file" && (
                        <ActionButton
                          onClick={() => p.onDownload(e)}
                          pending={p.downloading === e.path}
                          aria-label={`Download ${e.name}`}
                        >
                          Download
                        </ActionButton>
                      )}
                      <FormDialog
                        trigger={
                          <button
                            type="button"
                            aria-label={`Rename ${e.name}`}
                            onClick={() => p.onRenameOpen(e)}
                          >
                            Rename
                          </button>
                        }
                        title={`Rename ${e.name}`}
                        submitLabel="Rename"
                        onSubmit={() => p.onRename(e)}
                        pending={p.renamePending}
                      >
                        <Field label="New name" error={fieldMessage(p.renameError)}>
                          {(f) => (
                            <input
                              {...f}
                              value={p.renameTo}
                              onChange={(ev) => p.onRenameTo(ev.target.value)}
                              required
                              maxLength={255}
                              autoComplete="off"
                            />
                          )}
                        </Field>
                      </FormDialog>
                      <ConfirmDialog
                        trigger={
                          <button type="button" aria-label={`Delete ${e.name}`} onClick={p.onDeleteOpen}>
                            Delete
                          </button>
                        }
                        title={e.kind === "dir" ? `Delete the folder ${e.name}?` : `Delete ${e.name}?`}
                        description={
                          <p>
                            {e.kind === "dir"
                              ? "The folder and everything in it are deleted for good."
                              : `The file (${bytes(e.size_bytes)}) is deleted for good.`}
                          </p>
                        }
                        confirmLabel="Delete"
                        onConfirm={() => p.onDelete(e)}
                        pending={p.deletePending}
                        error={p.deleteError}
                      />
                    </div>
                  ),
                },
              ]}
            />
          )}
        </StateView>
      )}
    </section>
  );
}
