import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { addSSHKeyMutation, deleteSSHKeyMutation, sshKeysQuery } from "../api/queries/compute";
import { loadable } from "../components/States";
import { useCooldown, useIdempotencyKey } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { SSHKeysPageView } from "./SSHKeysPageView";

export function SSHKeysPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const keys = useQuery(sshKeysQuery());
  const [name, setName] = useState("");
  const [publicKey, setPublicKey] = useState("");
  const idem = useIdempotencyKey({ name, publicKey });
  const cooldown = useCooldown();
  const add = useMutation({ ...addSSHKeyMutation(qc), onError: cooldown.trip });
  const del = useMutation(deleteSSHKeyMutation(qc));
  return (
    <SSHKeysPageView
      keys={loadable(keys)}
      name={name}
      publicKey={publicKey}
      onName={setName}
      onPublicKey={setPublicKey}
      adding={add.isPending}
      addError={add.error}
      cooldown={cooldown.secondsLeft}
      onAdd={() =>
        add.mutate(
          { name, public_key: publicKey, key: idem.key },
          {
            onSuccess: () => {
              setName("");
              setPublicKey("");
              idem.reset();
              announce("SSH key added.");
            },
          },
        )
      }
      onDelete={(id) => del.mutateAsync(id).then(() => announce("SSH key deleted."))}
      deleting={del.isPending}
      deleteError={del.error}
    />
  );
}
export { SSHKeysPage as Component };
