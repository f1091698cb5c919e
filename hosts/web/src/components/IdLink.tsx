import { Link } from "react-router";
import { shortId } from "./format";

/** An id shown by its short name, linking to its page; the whole id is the link's accessible name. */
export function IdLink({ to, id, what }: { to: string; id: string; what: string }) {
  return (
    <Link to={to} className="mono" aria-label={`${what} ${id}`}>
      {shortId(id)}
    </Link>
  );
}
