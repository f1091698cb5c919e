import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { useProject } from "../auth";
import {
  deleteMutation,
  downloadFile,
  invalidateStorage,
  joinPath,
  mkdirMutation,
  parentPath,
  renameMutation,
  storageListQuery,
  storageUsageQuery,
} from "../api/queries/storage";
import { uploadFile } from "../api/upload";
import { newId } from "../api/client";
import type { StorageEntry } from "../api/types";
import { loadable } from "../components/States";
import { useCooldown, useCursorPages, useIdempotencyKey } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { StoragePageView, type Upload } from "./StoragePageView";

/** The folder in the address (?path=/a/b), "/" for the top folder. */
function folderOf(params: URLSearchParams): string {
  const p = params.get("path");
  return p && p !== "/" ? "/" + p.replace(/^\/+|\/+$/g, "") : "/";
}

export function StoragePage() {
  const { project } = useProject();
  const projectId = project.id;
  const qc = useQueryClient();
  const announce = useAnnounce();
  const [params, setParams] = useSearchParams();
  const dir = folderOf(params);
  // Uploads outlive a change of folder (each goes where it was started).
  const [uploads, setUploads] = useState<Upload[]>([]);
  const queue = useRef<Promise<void>>(Promise.resolve());
  const patch = useCallback(
    (id: string, p: Partial<Upload>) => setUploads((us) => us.map((u) => (u.id === id ? { ...u, ...p } : u))),
    [],
  );

  const onFiles = (files: File[], folder: string) => {
    const added: (Upload & { file: File; ctrl: AbortController })[] = files.map((f) => ({
      id: newId(),
      name: f.name,
      size: f.size,
      loaded: 0,
      status: "waiting",
      file: f,
      ctrl: new AbortController(),
    }));
    setUploads((us) => [...us.filter((u) => u.status === "uploading" || u.status === "waiting"), ...added]);
    // One file at a time: progress reads plainly and the quota is reserved in order.
    for (const u of added) {
      queue.current = queue.current.then(async () => {
        if (u.ctrl.signal.aborted) return;
        patch(u.id, { status: "uploading", cancel: () => u.ctrl.abort() });
        try {
          await uploadFile(u.file, joinPath(folder, u.file.name), {
            projectId,
            signal: u.ctrl.signal,
            onProgress: (loaded) => patch(u.id, { loaded }),
          });
          patch(u.id, { status: "done", loaded: u.size, cancel: undefined });
          announce(`Uploaded ${u.name}.`);
        } catch (e) {
          const cancelled = e instanceof DOMException && e.name === "AbortError";
          patch(u.id, {
            status: cancelled ? "cancelled" : "failed",
            error: cancelled ? undefined : e,
            cancel: undefined,
          });
          announce(cancelled ? `Upload of ${u.name} cancelled.` : `Upload of ${u.name} failed.`);
        }
        invalidateStorage(qc, projectId);
      });
    }
    for (const u of added)
      patch(u.id, { cancel: () => (u.ctrl.abort(), patch(u.id, { status: "cancelled" })) });
  };

  // Everything else is per folder: a new folder starts on page 1 with empty forms.
  return (
    <StorageFolder
      key={project.id + "\n" + dir}
      projectId={project.id}
      projectName={project.name}
      dir={dir}
      onOpen={(p) => setParams(p === "/" ? {} : { path: p })}
      uploads={uploads}
      onFiles={(files) => onFiles(files, dir)}
      onDismissUploads={() =>
        setUploads((us) => us.filter((u) => u.status === "uploading" || u.status === "waiting"))
      }
    />
  );
}

function StorageFolder({
  projectId,
  projectName,
  dir,
  onOpen,
  uploads,
  onFiles,
  onDismissUploads,
}: {
  projectId: string;
  projectName: string;
  dir: string;
  onOpen: (path: string) => void;
  uploads: Upload[];
  onFiles: (files: File[]) => void;
  onDismissUploads: () => void;
}) {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const pages = useCursorPages();
  const list = useQuery({ ...storageListQuery(projectId, dir, pages.cursor), placeholderData: (p) => p });
  const usage = useQuery(storageUsageQuery(projectId));

  const [folderName, setFolderName] = useState("");
  const mkdirKey = useIdempotencyKey({ dir, folderName });
  const mkdirCooldown = useCooldown();
  const mkdir = useMutation({ ...mkdirMutation(qc, projectId), onError: mkdirCooldown.trip });

  const [renameFrom, setRenameFrom] = useState("");
  const [renameTo, setRenameTo] = useState("");
  const renameKey = useIdempotencyKey({ renameFrom, renameTo });
  const rename = useMutation(renameMutation(qc, projectId));
  const del = useMutation(deleteMutation(qc, projectId));
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const [downloading, setDownloading] = useState<string>();

  return (
    <StoragePageView
      projectName={projectName}
      dir={dir}
      onOpen={onOpen}
      listing={loadable(list)}
      usage={loadable(usage)}
      pager={pages.pager(list.data?.next_cursor, list.isFetching)}
      folderName={folderName}
      onFolderName={(v) => {
        setFolderName(v);
        mkdir.reset();
      }}
      onMkdir={() =>
        mkdir.mutate(
          { path: joinPath(dir, folderName.trim()), key: mkdirKey.key },
          {
            onSuccess: (e) => {
              setFolderName("");
              mkdirKey.reset();
              announce(`Folder ${e.name} created.`);
            },
          },
        )
      }
      mkdirPending={mkdir.isPending}
      mkdirError={mkdir.error}
      mkdirCooldown={mkdirCooldown.secondsLeft}
      uploads={uploads}
      onFiles={onFiles}
      onDismissUploads={onDismissUploads}
      renameTo={renameTo}
      onRenameTo={(v) => {
        setRenameTo(v);
        rename.reset();
      }}
      onRenameOpen={(e: StorageEntry) => {
        setRenameFrom(e.path);
        setRenameTo(e.name);
        rename.reset();
      }}
      onRename={(e: StorageEntry) =>
        rename
          .mutateAsync({
            from: e.path,
            to: joinPath(parentPath(e.path), renameTo.trim()),
            key: renameKey.key,
          })
          .then((m) => {
            renameKey.reset();
            announce(`Renamed ${e.name} to ${m.entry.name}.`);
          })
      }
      renamePending={rename.isPending}
      renameError={rename.error}
      onDelete={(e: StorageEntry) =>
        del.mutateAsync({ entry: e, key: newId() }).then((d) => {
          announce(
            d.kind === "dir" ? `Folder ${e.name} and ${d.files} files deleted.` : `${e.name} deleted.`,
          );
        })
      }
      onDeleteOpen={() => del.reset()}
      deletePending={del.isPending}
      deleteError={del.error}
      onDownload={(e: StorageEntry) => {
        setDownloadError(null);
        setDownloading(e.path);
        downloadFile(projectId, e).then(
          () => setDownloading(undefined),
          (err: unknown) => (setDownloading(undefined), setDownloadError(err)),
        );
      }}
      downloading={downloading}
      downloadError={downloadError}
    />
  );
}
export { StoragePage as Component };
