import * as Dialog from "@radix-ui/react-dialog";
import { useId, useState, type ReactNode } from "react";
import { ActionError } from "./States";

/** A labelled form field: error and hint are tied to the input for screen readers. */
export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: string;
  error?: string;
  children: (p: { id: string; "aria-describedby"?: string; "aria-invalid"?: boolean }) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? id + "-hint" : undefined;
  const errId = error ? id + "-err" : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-describedby": describedBy, "aria-invalid": error ? true : undefined })}
      {hint && (
        <span id={hintId} className="hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={errId} className="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

/** A button that is disabled while its request runs and while a 429 wait lasts. */
export function ActionButton({
  pending,
  cooldown,
  children,
  className,
  onClick,
  type = "button",
  disabled,
  ...rest
}: {
  pending?: boolean;
  cooldown?: number;
  children: ReactNode;
  className?: string;
  onClick?: () => void;
  type?: "button" | "submit";
  disabled?: boolean;
  "aria-label"?: string;
}) {
  const waiting = (cooldown ?? 0) > 0;
  return (
    <button
      type={type}
      className={className}
      onClick={onClick}
      disabled={disabled || pending || waiting}
      aria-busy={pending || undefined}
      {...rest}
    >
      {children}
      {waiting ? ` (wait ${cooldown} s)` : pending ? "…" : ""}
    </button>
  );
}

/**
 * The confirm pattern for destructive actions: the trigger opens a dialog
 * that names what will happen; focus goes to Cancel, returns to the trigger
 * on close; the action's error is shown inside the dialog.
 */
export function ConfirmDialog({
  trigger,
  title,
  description,
  confirmLabel,
  onConfirm,
  pending,
  error,
  cooldown,
}: {
  trigger: ReactNode;
  title: string;
  description: ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<unknown>;
  pending?: boolean;
  error?: unknown;
  cooldown?: number;
}) {
  const [open, setOpen] = useState(false);
  return (
    <Dialog.Root open={open} onOpenChange={setOpen}>
      <Dialog.Trigger asChild>{trigger}</Dialog.Trigger>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content
          className="dialog"
          onOpenAutoFocus={(e) => {
            e.preventDefault();
            (document.querySelector("[data-confirm-cancel]") as HTMLElement | null)?.focus();
          }}
        >
          <Dialog.Title>{title}</Dialog.Title>
          <Dialog.Description asChild>
            <div>{description}</div>
          </Dialog.Description>
          <ActionError error={error} />
          <div className="actions">
            <Dialog.Close asChild>
              <button type="button" data-confirm-cancel>
                Cancel
              </button>
            </Dialog.Close>
            <ActionButton
              className="danger"
              pending={pending}
              cooldown={cooldown}
              onClick={() => {
                onConfirm().then(
                  () => setOpen(false),
                  () => {},
                );
              }}
            >
              {confirmLabel}
            </ActionButton>
          </div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

/**
 * A small form in a dialog (rename): the trigger opens it, focus goes to its
 * first field, Enter submits, success closes it and focus returns to the
 * trigger; errors are shown by the fields passed in (next to their cause).
 */
export function FormDialog({
  trigger,
  title,
  description,
  submitLabel,
  onSubmit,
  onOpenChange,
  pending,
  cooldown,
  children,
}: {
  trigger: ReactNode;
  title: string;
  description?: ReactNode;
  submitLabel: string;
  onSubmit: () => Promise<unknown>;
  onOpenChange?: (open: boolean) => void;
  pending?: boolean;
  cooldown?: number;
  children: ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const change = (o: boolean) => {
    setOpen(o);
    onOpenChange?.(o);
  };
  return (
    <Dialog.Root open={open} onOpenChange={change}>
      <Dialog.Trigger asChild>{trigger}</Dialog.Trigger>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className="dialog">
          <Dialog.Title>{title}</Dialog.Title>
          <Dialog.Description asChild>
            <div className={description ? undefined : "visually-hidden"}>{description ?? title}</div>
          </Dialog.Description>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              onSubmit().then(
                () => change(false),
                () => {},
              );
            }}
          >
            {children}
            <div className="actions">
              <Dialog.Close asChild>
                <button type="button">Cancel</button>
              </Dialog.Close>
              <ActionButton type="submit" className="primary" pending={pending} cooldown={cooldown}>
                {submitLabel}
              </ActionButton>
            </div>
          </form>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

/** A modal that shows something once (a bootstrap token) with a close button. */
export function InfoDialog({
  open,
  onClose,
  title,
  wide,
  children,
}: {
  open: boolean;
  onClose: () => void;
  title: string;
  /** Room for command lines. */
  wide?: boolean;
  children: ReactNode;
}) {
  return (
    <Dialog.Root open={open} onOpenChange={(o) => !o && onClose()}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className={wide ? "dialog wide" : "dialog"}>
          <Dialog.Title>{title}</Dialog.Title>
          <Dialog.Description className="visually-hidden">{title}</Dialog.Description>
          {children}
          <div className="actions">
            <Dialog.Close asChild>
              <button type="button" className="primary">
                Done
              </button>
            </Dialog.Close>
          </div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

/**
 * A secret (a webhook's signing secret, an API key, a client secret) shown
 * this once, with a Copy button: neither the console nor the API shows it
 * again. `children` say what it is for, above it; `howTo`, below, how to
 * use it (command lines: the dialog is wider then).
 */
export function SecretDialog({
  secret,
  title,
  ifLost,
  copyLabel = "Copy secret",
  testId,
  onClose,
  children,
  howTo,
}: {
  secret: string | undefined;
  title: string;
  /** What to do if it is lost: "rotate the secret". */
  ifLost: string;
  copyLabel?: string;
  testId: string;
  onClose: () => void;
  children?: ReactNode;
  howTo?: ReactNode;
}) {
  return (
    <InfoDialog open={!!secret} onClose={onClose} title={title} wide={!!howTo}>
      {secret && (
        <>
          <p className="banner warning">
            <strong>Copy it now: you will not see it again.</strong> Neither the console nor the API shows it
            after this; if it is lost, {ifLost}.
          </p>
          {children}
          <pre className="secret" data-testid={testId}>
            {secret}
          </pre>
          <CopyButton text={secret} label={copyLabel} />
          {howTo}
        </>
      )}
    </InfoDialog>
  );
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(
          () => {
            setCopied(true);
            setTimeout(() => setCopied(false), 2000);
          },
          () => setCopied(false),
        );
      }}
    >
      {copied ? "Copied" : label}
      <span className="visually-hidden" aria-live="polite">
        {copied ? " copied to the clipboard" : ""}
      </span>
    </button>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge ${state}`}>{state.replace("_", " ")}</span>;
}
