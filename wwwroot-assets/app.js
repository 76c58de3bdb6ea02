// Small helpers the dashboard calls through JS interop.
window.cfOrch = {
  load: (key) => {
    try { return window.localStorage.getItem(key); } catch { return null; }
  },
  save: (key, value) => {
    try { window.localStorage.setItem(key, value); } catch { /* private mode: the choice lasts this page only */ }
  },
  scrollToEnd: (id) => {
    const element = document.getElementById(id);
    if (element) { element.scrollTop = element.scrollHeight; }
  },
  utcOffsetMinutes: () => -new Date().getTimezoneOffset(),
  copy: async (text) => {
    try { await navigator.clipboard.writeText(text); return true; } catch { return false; }
  },
  scrollIntoView: (id) => document.getElementById(id)?.scrollIntoView({ block: 'center' }),
  // Saves text as a file (the log buffer), without a round trip to the server.
  download: (name, text) => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
    const link = Object.assign(document.createElement('a'), { href: url, download: name });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  },
};

// The YAML editor: Tab indents (two spaces; Esc then Tab leaves the editor, as in VS Code), Ctrl+S / Cmd+S saves.
// Text inserted here is announced with an input event, so the page sees it as typed.
let leaveOnTab = false;
document.addEventListener('keydown', (event) => {
  const editor = event.target;
  if (!(editor instanceof HTMLTextAreaElement) || editor.dataset.editor !== 'yaml') { return; }
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 's') {
    event.preventDefault();
    // Not the Save button, which the page may not have enabled yet for the keys just typed: this one is handled after
    // them, in order, and says why when there is nothing to save.
    document.querySelector('[data-testid=save-shortcut]')?.click();
    return;
  }
  if (event.key === 'Escape') { leaveOnTab = true; return; }
  if (event.key === 'Tab' && !event.shiftKey && !leaveOnTab && !editor.readOnly) {
    event.preventDefault();
    editor.setRangeText('  ', editor.selectionStart, editor.selectionEnd, 'end');
    editor.dispatchEvent(new Event('input', { bubbles: true }));
  }
  if (event.key !== 'Escape') { leaveOnTab = false; }
});

// TTL countdowns: elements with data-expires (Unix seconds) show the time left, updated in the browser every second;
// elements with data-ago (Unix seconds) show how long ago that was, so that a reading that stopped coming looks old.
// Both follow the server's clock: the page carries the server's time when it was made, and the difference to the
// browser's clock (a machine whose clock is off, plus the page's travel time) is taken away.
const serverTime = Number(document.querySelector('meta[name="cf-server-time"]')?.content);
const skewMs = Number.isFinite(serverTime) && serverTime > 0 ? serverTime - Date.now() : 0;
setInterval(() => {
  const now = (Date.now() + skewMs) / 1000;
  for (const element of document.querySelectorAll('[data-ago]')) {
    if (!element.dataset.ago) { continue; }
    const age = Math.max(0, Math.round(now - Number(element.dataset.ago)));
    // The same format as the server's (Dashboard.ReadAgo).
    element.textContent = age < 2 ? 'just now' : age < 120 ? `${age} s ago` : `${Math.round(age / 60)} min ago`;
  }
  for (const element of document.querySelectorAll('[data-expires]')) {
    const left = Math.round(Number(element.dataset.expires) - now);
    // The same format as the server's (Services.Seconds).
    element.textContent = left <= 0 ? 'expiring'
      : left < 90 ? `${left} s`
      : left < 600 ? `${Math.floor(left / 60)} min ${left % 60} s`
      : left < 5400 ? `${Math.round(left / 60)} min`
      : left < 172800 ? `${(left / 3600).toFixed(1).replace(/\.0$/, '')} h`
      : `${(left / 86400).toFixed(1).replace(/\.0$/, '')} d`;
  }
}, 1000);
