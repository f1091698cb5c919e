import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useProject } from "../auth";
import {
  addMemberMutation,
  createProjectMutation,
  inviteMutation,
  membersQuery,
  projectsQuery,
  removeMemberMutation,
} from "../api/queries/projects";
import { loadable } from "../components/States";
import { useIdempotencyKey } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { SettingsPageView } from "./SettingsPageView";

export function SettingsPage() {
  const { me, project, isTenantAdmin } = useProject();
  const qc = useQueryClient();
  const announce = useAnnounce();
  const projects = useQuery(projectsQuery());
  const members = useQuery(membersQuery(project.id));
  const [newProject, setNewProject] = useState("");
  const [member, setMember] = useState("");
  const [memberRole, setMemberRole] = useState<"admin" | "member" | "viewer">("member");
  const [inviteEmail, setInviteEmail] = useState("");
  const [inviteRole, setInviteRole] = useState<"admin" | "member">("member");
  const [invited, setInvited] = useState<string>();
  const projKey = useIdempotencyKey({ newProject });
  const memberKey = useIdempotencyKey({ member, memberRole, p: project.id });
  const inviteKey = useIdempotencyKey({ inviteEmail, inviteRole });
  const create = useMutation(createProjectMutation(qc));
  const add = useMutation(addMemberMutation(qc, project.id));
  const remove = useMutation(removeMemberMutation(qc, project.id));
  const invite = useMutation(inviteMutation());
  return (
    <SettingsPageView
      me={me}
      project={project}
      isTenantAdmin={isTenantAdmin}
      projects={loadable(projects)}
      members={loadable(members)}
      newProject={newProject}
      onNewProject={setNewProject}
      onCreateProject={() =>
        create.mutate(
          { name: newProject, key: projKey.key },
          { onSuccess: () => (setNewProject(""), projKey.reset(), announce("Project created.")) },
        )
      }
      creating={create.isPending}
      createError={create.error}
      member={member}
      onMember={setMember}
      memberRole={memberRole}
      onMemberRole={setMemberRole}
      onAddMember={() =>
        add.mutate(
          { who: member, role: memberRole, key: memberKey.key },
          { onSuccess: () => (setMember(""), memberKey.reset(), announce("Member added.")) },
        )
      }
      addingMember={add.isPending}
      addMemberError={add.error}
      onRemoveMember={(id) => remove.mutateAsync(id).then(() => announce("Member removed."))}
      removing={remove.isPending}
      removeError={remove.error}
      inviteEmail={inviteEmail}
      onInviteEmail={setInviteEmail}
      inviteRole={inviteRole}
      onInviteRole={setInviteRole}
      onInvite={() =>
        invite.mutate(
          { email: inviteEmail, role: inviteRole, key: inviteKey.key },
          {
            onSuccess: (i) => (
              setInvited(i.email),
              setInviteEmail(""),
              inviteKey.reset(),
              announce(`Invited ${i.email}.`)
            ),
          },
        )
      }
      inviting={invite.isPending}
      inviteError={invite.error}
      invited={invited}
    />
  );
}
export { SettingsPage as Component };
