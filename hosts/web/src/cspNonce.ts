// The console's Content-Security-Policy allows <style> elements only with the
// per-response nonce the Go handler writes into <meta name="csp-nonce">.
// xterm.js creates <style> elements at run time and takes no nonce, so every
// <style> the page creates gets it stamped at creation, before insertion
// (a nonce set after insertion is ignored). Scripts stay 'self' only.
const meta = typeof document !== "undefined" ? document.querySelector('meta[name="csp-nonce"]') : null;
const nonce = meta?.getAttribute("content") ?? "";

if (nonce && !nonce.startsWith("__")) {
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (this: Document, tag: string, opts?: ElementCreationOptions) {
    const el = create.call(this, tag, opts);
    if (tag.toLowerCase() === "style") el.setAttribute("nonce", nonce);
    return el;
  } as typeof Document.prototype.createElement;
}

export {};
