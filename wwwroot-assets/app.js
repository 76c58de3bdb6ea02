// Small helpers the dashboard calls through JS interop.
window.cfOrch = {
  load: (key) => {
    try { return window.localStorage.getItem(key); } catch { return null; }
  },
  save: (key, value) => {
    try { window.localStorage.setItem(key, value); } catch { /* private mode: the choice lasts this page only */ }
  },
};
