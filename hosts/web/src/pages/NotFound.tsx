import { Link } from "react-router";
import { usePageHeading } from "../components/hooks";

export function NotFound() {
  const h = usePageHeading("Not found");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Page not found
      </h1>
      <p>
        There is nothing at this address. <Link to="/">Go to capacity</Link>.
      </p>
    </section>
  );
}
