/*
 * badge.js: C2PA provenance badges for publisher pages (classic script, no dependencies, ES2017).
 *
 *   <script src="https://SERVICE/v1/badge.js" defer></script>
 *   <figcaption data-provenance-ref="img_…" data-provenance-lang="en">Caption</figcaption>
 *   <img src="…" srcset="…" sizes="…" data-provenance-ref="img_…">      (also <picture>, <video>)
 *   <provenance-badge ref="art_…" lang="zh-Hans"></provenance-badge>
 *   <img src="…" data-provenance-match>                 (opt-in: an image with no ref, e.g. a syndicated copy)
 *
 * All refs on the page are looked up with one GET {script origin}/v1/badges?refs=a,b&lang=xx per language
 * (at most 100 refs per request) and a badge is appended inside each marked element. Only two cases show
 * anything (C2PA UX guidance: one label at a time, neutral tones): state "trusted" with labels (AI label pill)
 * and state "invalid" (neutral invalid mark). Everything else, and every error, renders nothing.
 * API: window.ProvenanceBadges.refresh(root?) removes the badges inside root and renders them again.
 *
 * Opt-in matching (data-provenance-match on an <img> or <picture> without a ref): the image's bytes are fetched
 * (same origin, or a host that sends CORS headers; connect-src must allow it) and POSTed to
 * {script origin}/v1/badges/match. Only a match with a trusted, AI-labelled original shows a mark, and it says
 * "Credentials found for a matching original" (the copy itself is not verified: C2PA guidance on recovered
 * manifests); its popover names the original's label, signer and report. A copy gets no machine-readable
 * marking. At most MAX_MATCHES images per scan, each at most MAX_MATCH_BYTES.
 *
 * Media (img, picture, video, audio, canvas, iframe, embed, object, svg) cannot show a child, so their badge is
 * inserted just before the element (before its <picture> for an <img> inside one) and is absolutely positioned
 * at its static place, the media's top-left corner, overlapping it: nothing the CMS made is moved, wrapped or
 * restyled, so the layout does not shift and responsive images stay responsive (badge.css).
 *
 * Machine-readable marking, only from the verified decision's "marking" (present only for a trusted AI label):
 * the marked element gets the W3C AI Content Disclosure attribute (ai-disclosure="ai-generated" | "ai-assisted"),
 * and the badge carries a schema.org microdata item of its own (itemscope, itemtype ImageObject / Article,
 * <link itemprop="digitalSourceType" href="https://schema.org/…DigitalSource">, and for media the
 * element's own URL as contentUrl). The item is the badge's, so no microdata the publisher wrote changes
 * meaning. Nothing is marked for untrusted, invalid, unknown or withdrawn content, and a refresh restores
 * the element's own ai-disclosure value.
 *
 * Security rules (keep them when editing):
 *  - Server data reaches the DOM only through textContent, fixed-name attributes and the href property:
 *    never innerHTML / insertAdjacentHTML / outerHTML / document.write, eval, new Function, string timers.
 *  - A link is made only when report_url resolves to the script's own origin ("/path" or same-origin URL).
 *  - No style attributes and no injected <style> (strict CSP): classes only, styled by /v1/badge.css.
 *  - fetch uses credentials: "omit" (no cookies) and mode: "cors".
 *  - Never throws, never logs: any failure renders nothing.
 */
(function () {
  "use strict";
  if (typeof window === "undefined" || typeof document === "undefined" || window.ProvenanceBadges) return;

  const MAX_REFS = 100;
  const SELECTOR = "[data-provenance-ref], provenance-badge[ref]";
  const MATCH_SELECTOR = "img[data-provenance-match], picture[data-provenance-match]";
  const MAX_MATCHES = 10; // per scan: each is an upload to the service, rate-limited per reader address
  const MAX_MATCH_BYTES = 10 * 1024 * 1024; // the service's match_max_bytes default
  const WRAP_ATTR = "data-provenance-badge"; // marks the <span> this script appends to a marked element
  const OPEN_POPOVERS = "[" + WRAP_ATTR + "] > .provenance-popover:not([hidden])";
  const TEXT = {
    en: { signedBy: "Signed by ", how: "How this is verified", original: "Original: " },
    "zh-Hans": { signedBy: "签名者：", how: "查看验证方式", original: "原件：" },
  };
  // Elements whose children are not shown (void or replaced): their badge goes next to them.
  const MEDIA = new Set(["img", "picture", "video", "audio", "canvas", "iframe", "embed", "object", "svg"]);
  const WITH_URL = new Set(["img", "picture", "video", "audio"]); // media whose URL names them (contentUrl)
  const DISCLOSURES = new Set(["ai-generated", "ai-assisted", "autonomous"]); // W3C AI Content Disclosure
  const DIGITAL_SOURCE = /^https:\/\/schema\.org\/[A-Za-z]+DigitalSource$/;
  const ITEM_TYPES = { image: "https://schema.org/ImageObject", article: "https://schema.org/Article" };

  const ORIGIN = (function () {
    try {
      const script = document.currentScript;
      if (script && script.src) return new URL(script.src, location.href).origin;
    } catch (e) { /* fall back below */ }
    return location.origin;
  })();

  const tokens = new WeakMap(); // element -> token of its latest scan; responses for older tokens are dropped
  const mediaBadges = new WeakMap(); // media element -> the badge inserted next to it
  const ownDisclosure = new WeakMap(); // element -> its ai-disclosure before this script set one (null: none)
  let popoverCount = 0;
  let listening = false;
  let started = false;

  function isText(value) {
    return typeof value === "string" && value.trim() !== "";
  }

  function normLang(tag) {
    return /^zh/i.test(String(tag || "").trim()) ? "zh-Hans" : "en";
  }

  function langOf(el) {
    const own = el.getAttribute("data-provenance-lang");
    if (own) return normLang(own);
    const holder = el.closest("[lang]");
    return normLang(holder ? holder.getAttribute("lang") : document.documentElement.lang);
  }

  function refOf(el) {
    let ref = el.getAttribute("data-provenance-ref");
    if (!ref && el.localName === "provenance-badge") ref = el.getAttribute("ref");
    ref = String(ref || "").trim();
    return ref.length <= 256 && !/[\s,]/.test(ref) ? ref : "";
  }

  function isMedia(el) {
    return MEDIA.has(el.localName);
  }

  /** Where a media element's badge goes before: the element, or the <picture> around an <img>. */
  function anchorOf(el) {
    const parent = el.parentElement;
    return el.localName === "img" && parent && parent.localName === "picture" ? parent : el;
  }

  function ownBadges(el) {
    if (isMedia(el)) {
      const wrap = mediaBadges.get(el);
      return wrap && wrap.isConnected ? [wrap] : [];
    }
    return Array.prototype.filter.call(el.children, (child) => child.hasAttribute(WRAP_ATTR));
  }

  /** Remove el's badge and give back the element's own ai-disclosure (a new decision is about to come). */
  function clear(el) {
    ownBadges(el).forEach((wrap) => wrap.remove());
    mediaBadges.delete(el);
    if (ownDisclosure.has(el)) {
      const own = ownDisclosure.get(el);
      if (own === null) el.removeAttribute("ai-disclosure");
      else el.setAttribute("ai-disclosure", own);
      ownDisclosure.delete(el);
    }
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function formatDate(value, lang) {
    if (!isText(value)) return "";
    const date = new Date(value);
    if (isNaN(date.getTime())) return "";
    try {
      return date.toLocaleDateString(lang, { year: "numeric", month: "long", day: "numeric" });
    } catch (e) {
      return date.toLocaleDateString();
    }
  }

  /** The absolute URL for report_url if it stays on the script's origin, else "" (no link). */
  function safeHref(value) {
    if (!isText(value)) return "";
    try {
      const raw = value.trim();
      if (raw.charAt(0) !== "/" && !/^https?:\/\//i.test(raw)) return "";
      const url = new URL(raw, ORIGIN + "/"); // "//host" and "/\host" resolve off-origin and are refused
      return url.origin === ORIGIN ? url.href : "";
    } catch (e) {
      return "";
    }
  }

  function nextId() {
    let id;
    do id = "provenance-popover-" + ++popoverCount; while (document.getElementById(id));
    return id;
  }

  function setOpen(wrap, open) {
    const button = wrap.querySelector("button.provenance-badge");
    const popover = wrap.querySelector(".provenance-popover");
    if (!button || !popover) return;
    if (open) closeAll(wrap);
    popover.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function closeAll(except, target, restoreFocus) {
    document.querySelectorAll(OPEN_POPOVERS).forEach((popover) => {
      const wrap = popover.parentNode;
      if (wrap === except || (target && wrap.contains(target))) return;
      const hadFocus = restoreFocus && wrap.contains(document.activeElement);
      setOpen(wrap, false);
      if (hadFocus) wrap.querySelector("button.provenance-badge").focus();
    });
  }

  function onDocumentClick(event) {
    try { closeAll(null, event.target, false); } catch (e) { /* ignore */ }
  }

  function onKeydown(event) {
    try {
      if (event.key === "Escape" || event.key === "Esc") closeAll(null, null, true);
    } catch (e) { /* ignore */ }
  }

  function listen() {
    if (listening) return;
    listening = true;
    document.addEventListener("click", onDocumentClick, true);
    document.addEventListener("keydown", onKeydown);
  }

  /** lead: lines shown first in the popover (a match's words about the original), strings only. */
  function buildBadge(info, text, tone, lang, lead) {
    const t = TEXT[lang] || TEXT.en;
    const wrap = make("span", "provenance-badge-wrap");
    wrap.setAttribute(WRAP_ATTR, "");
    wrap.lang = lang;
    const button = make("button", "provenance-badge provenance-badge--" + tone, text);
    button.type = "button";
    button.setAttribute("aria-label", text);
    wrap.append(document.createTextNode(" "), button); // the space keeps it readable unstyled

    const parts = [];
    (lead || []).forEach((line) => {
      if (isText(line)) parts.push(make("span", "provenance-popover__recovered", line));
    });
    if (isText(info.description)) parts.push(make("span", "provenance-popover__description", info.description));
    const review = info.state === "trusted" && info.review && typeof info.review === "object" ? info.review : null;
    if (review && isText(review.text)) parts.push(make("span", "provenance-popover__review", review.text));
    if (isText(info.signer)) parts.push(make("span", "provenance-popover__signer", t.signedBy + info.signer));
    const date = formatDate(info.stamped_at, lang);
    if (date) {
      const time = make("time", "provenance-popover__date", date);
      time.dateTime = info.stamped_at;
      parts.push(time);
    }
    const href = safeHref(info.report_url);
    let link = null;
    if (href) {
      link = make("a", "provenance-popover__link", t.how);
      link.href = href;
      parts.push(link);
    }
    if (!parts.length) return wrap; // nothing to explain: a plain label, no popover

    const popover = make("span", "provenance-popover");
    popover.id = nextId();
    popover.hidden = true;
    popover.setAttribute("role", "dialog");
    popover.setAttribute("aria-label", text);
    parts.forEach((part, i) => {
      if (i) popover.appendChild(document.createTextNode(" "));
      popover.appendChild(part);
    });
    wrap.appendChild(popover);
    button.setAttribute("aria-haspopup", "dialog");
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", popover.id);
    button.addEventListener("click", () => {
      try { setOpen(wrap, button.getAttribute("aria-expanded") !== "true"); } catch (e) { /* ignore */ }
    });
    // Inside a publisher's <a> or <summary>, a click on the badge must not navigate or toggle it.
    wrap.addEventListener("click", (event) => {
      if (!(link && link.contains(event.target))) event.preventDefault();
    });
    return wrap;
  }

  /** The media's own URL for contentUrl (http(s) only), or "". */
  function mediaUrl(el) {
    let media = el;
    if (el.localName === "picture") media = el.querySelector("img");
    if (!media || !WITH_URL.has(el.localName)) return "";
    const url = String(media.currentSrc || media.src || "");
    return /^https?:\/\//i.test(url) ? url : "";
  }

  function linkProp(name, href) {
    const link = document.createElement("link");
    link.setAttribute("itemprop", name);
    link.href = href;
    return link;
  }

  /** Machine-readable marking of a trusted AI decision: ai-disclosure on el, a microdata item in the badge. */
  function mark(el, wrap, info) {
    const marking = info.marking;
    if (info.state !== "trusted" || info.withdrawn || !marking || typeof marking !== "object") return;
    if (DISCLOSURES.has(marking.ai_disclosure)) {
      if (!ownDisclosure.has(el)) ownDisclosure.set(el, el.getAttribute("ai-disclosure"));
      el.setAttribute("ai-disclosure", marking.ai_disclosure);
    }
    const source = marking.schema_org_digital_source_type;
    if (typeof source !== "string" || !DIGITAL_SOURCE.test(source)) return;
    wrap.setAttribute("itemscope", "");
    const known = Object.prototype.hasOwnProperty.call(ITEM_TYPES, info.kind);
    wrap.setAttribute("itemtype", known ? ITEM_TYPES[info.kind] : "https://schema.org/CreativeWork");
    wrap.appendChild(linkProp("digitalSourceType", source));
    const url = mediaUrl(el);
    if (url) wrap.appendChild(linkProp("contentUrl", url));
  }

  function render(el, token, info, lang) {
    if (tokens.get(el) !== token || ownBadges(el).length || !info || typeof info !== "object") return;
    let text = "";
    let tone = "";
    if (info.state === "trusted" && Array.isArray(info.labels) && info.labels.length && info.labels[0]) {
      text = info.labels[0].text;
      tone = "ai";
    } else if (info.state === "invalid" && info.badge && typeof info.badge === "object") {
      text = info.badge.text;
      tone = "invalid";
    }
    if (!isText(text)) return;
    const wrap = buildBadge(info, text, tone, lang);
    if (isMedia(el)) {
      wrap.classList.add("provenance-badge-wrap--media");
      anchorOf(el).before(wrap);
      mediaBadges.set(el, wrap);
    } else {
      el.appendChild(wrap);
    }
    mark(el, wrap, info);
  }

  /** A match with a trusted, AI-labelled original: a mark saying so, never the copy's own label. */
  function renderMatch(el, token, answer, lang) {
    if (tokens.get(el) !== token || ownBadges(el).length || !answer || typeof answer !== "object") return;
    const original = answer.original;
    if (answer.state !== "matching_original" || !isText(answer.text) || !original || typeof original !== "object") return;
    const label = Array.isArray(original.labels) && original.labels.length ? original.labels[0] : null;
    if (original.state !== "trusted" || !label || !isText(label.text)) return;
    const t = TEXT[lang] || TEXT.en;
    const info = { signer: original.signer, stamped_at: original.stamped_at, report_url: original.report_url };
    const wrap = buildBadge(info, answer.text, "recovered", lang, [t.original + label.text, answer.note]);
    wrap.classList.add("provenance-badge-wrap--media");
    anchorOf(el).before(wrap);
    mediaBadges.set(el, wrap);
  }

  /** The image's bytes (http(s), same origin or CORS), or null. */
  async function imageBytes(el) {
    const url = mediaUrl(el);
    if (!url) return null;
    const response = await fetch(url, { credentials: "omit", mode: "cors" });
    if (!response.ok) return null;
    const blob = await response.blob();
    return blob.size && blob.size <= MAX_MATCH_BYTES ? blob : null;
  }

  /** One match request for an image with no ref; resolves to the answer, or null on any failure. */
  async function fetchMatch(el, lang) {
    try {
      const blob = await imageBytes(el);
      if (!blob) return null;
      const type = /^image\/[a-z0-9.+-]+$/i.test(blob.type) ? blob.type : "application/octet-stream";
      const response = await fetch(ORIGIN + "/v1/badges/match?lang=" + encodeURIComponent(lang), {
        method: "POST", body: blob, headers: { "Content-Type": type }, credentials: "omit", mode: "cors",
      });
      if (!response.ok) return null;
      return await response.json();
    } catch (e) {
      return null;
    }
  }

  /** One batch request; resolves to the "badges" object, or null on any failure (never rejects). */
  async function fetchBatch(refs, lang) {
    try {
      const url = ORIGIN + "/v1/badges?refs=" + refs.map(encodeURIComponent).join(",") +
        "&lang=" + encodeURIComponent(lang);
      const response = await fetch(url, { credentials: "omit", mode: "cors" });
      if (!response.ok) return null;
      const data = await response.json();
      return data && typeof data.badges === "object" && data.badges !== null ? data.badges : null;
    } catch (e) {
      return null;
    }
  }

  /** Render badges for the marked elements in root (and root itself). replace: drop existing badges first. */
  async function scan(root, replace) {
    try {
      listen();
      const both = SELECTOR + ", " + MATCH_SELECTOR;
      const marked = Array.from(root.querySelectorAll(both));
      if (root.matches && root.matches(both)) marked.unshift(root);
      if (replace) {
        marked.forEach(clear); // a media element's badge is its sibling, possibly outside root
        root.querySelectorAll("[" + WRAP_ATTR + "]").forEach((wrap) => wrap.remove());
      }
      const groups = new Map(); // lang -> Map(ref -> [{el, token}])
      const unreferenced = []; // opt-in images with no ref: matched by their bytes
      for (const el of marked) {
        if (!replace && (tokens.has(el) || ownBadges(el).length)) continue; // idempotent
        const token = {};
        tokens.set(el, token);
        const ref = refOf(el);
        if (!ref) {
          if (el.matches(MATCH_SELECTOR) && unreferenced.length < MAX_MATCHES) unreferenced.push({ el, token });
          continue;
        }
        const lang = langOf(el);
        if (!groups.has(lang)) groups.set(lang, new Map());
        const byRef = groups.get(lang);
        if (!byRef.has(ref)) byRef.set(ref, []);
        byRef.get(ref).push({ el, token });
      }
      const jobs = [];
      groups.forEach((byRef, lang) => {
        const refs = Array.from(byRef.keys());
        for (let i = 0; i < refs.length; i += MAX_REFS) {
          const chunk = refs.slice(i, i + MAX_REFS);
          jobs.push(fetchBatch(chunk, lang).then((badges) => {
            for (const ref of chunk) {
              const info = badges && Object.prototype.hasOwnProperty.call(badges, ref) ? badges[ref] : null;
              for (const item of byRef.get(ref)) {
                try { render(item.el, item.token, info, lang); } catch (e) { /* render nothing */ }
              }
            }
          }).catch(() => {}));
        }
      });
      for (const item of unreferenced) {
        const lang = langOf(item.el);
        jobs.push(fetchMatch(item.el, lang).then((answer) => {
          try { renderMatch(item.el, item.token, answer, lang); } catch (e) { /* render nothing */ }
        }).catch(() => {}));
      }
      await Promise.all(jobs);
    } catch (e) { /* render nothing */ }
  }

  function defineElement() {
    try {
      if (!window.customElements || window.customElements.get("provenance-badge")) return;
      window.customElements.define("provenance-badge", class extends HTMLElement {
        static get observedAttributes() { return ["ref", "lang"]; }
        connectedCallback() { if (started) scan(this, false); } // present at load: joins the initial batch
        attributeChangedCallback(name, oldValue, newValue) {
          if (started && this.isConnected && oldValue !== newValue) scan(this, true);
        }
      });
    } catch (e) { /* no custom element */ }
  }

  function start() {
    if (started) return;
    started = true;
    scan(document, false);
  }

  try {
    window.ProvenanceBadges = Object.freeze({
      refresh: function (root) {
        return scan(root && typeof root.querySelectorAll === "function" ? root : document, true);
      },
    });
    defineElement();
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
    else start();
  } catch (e) { /* never throw into the page */ }
})();
