"""The report's inline style sheet and script (no external resources: the file opens offline)."""

CSS = """
:root{--t:128px;--fg:#1d1d1f;--muted:#666;--line:#ddd;--bg:#f6f6f4;--odd:#d0021b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
html{scroll-padding-top:calc(var(--bar,48px) + 8px)}
header,#overview,.cluster,.normal-set,.review-set{max-width:1500px;margin:0 auto;padding:12px 24px}
h1{font-size:22px;margin:8px 0 2px}
h2{font-size:18px;margin:0}
h3{font-size:13px;margin:10px 0 6px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.input{color:var(--muted);word-break:break-all;margin:0 0 8px}
.facts{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.fact{background:#fff;border:1px solid var(--line);border-radius:6px;padding:4px 10px}
.fact b{font-size:16px}
.settings{font-size:12px;color:var(--muted);margin:6px 0}
.settings code{background:#fff;border:1px solid var(--line);border-radius:4px;padding:0 4px;margin:0 4px 4px 0;display:inline-block}
.toolbar{position:sticky;top:0;z-index:5;background:var(--bg);border-bottom:1px solid var(--line);
  padding:8px 24px;display:flex;flex-wrap:wrap;gap:14px;align-items:center}
.toolbar .switch{font-weight:600;cursor:pointer;user-select:none;display:inline-flex;align-items:center;gap:6px}
.toolbar .switch input{width:18px;height:18px;margin:0}
.toolbar a{color:inherit;text-decoration:none;border-radius:10px;padding:1px 8px;border:1px solid var(--line);background:#fff}
.chip{display:inline-block;width:10px;height:10px;border-radius:50%;background:var(--c);margin-right:4px}
table.cont{border-collapse:collapse;background:#fff;font-size:12px;margin:2px 0 6px}
.caption{font-size:12px;color:var(--muted);margin:8px 0 0}
table.cont th,table.cont td{border:1px solid var(--line);padding:2px 8px;text-align:right}
table.cont th{background:#fafafa;font-weight:600}
table.cont td.diag{background:#dff3e2;font-weight:700}
table.cont td.zero{color:#bbb}
.figures{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.figures figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px}
.figures figcaption{color:var(--muted);font-size:12px;max-width:560px}
svg.plot{max-width:100%;height:auto;display:block}
#map circle{stroke:#fff;stroke-width:.6;cursor:pointer}
#map circle.odd{stroke:#000;stroke-width:1.2}
#map a:hover circle{stroke:#000;stroke-width:2}
.cluster,.normal-set,.review-set{border-top:4px solid var(--c,#9a9a9a);margin-top:18px;background:#fff;border-radius:4px}
.review-set#excluded{--c:#444}
.cluster h2 .size,.normal-set h2 .size,.review-set h2 .size{color:var(--muted);font-weight:400;margin-left:8px}
.note{color:var(--muted);margin:4px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.thumb{margin:0;width:calc(var(--t) + 10px);padding:4px;border:1px solid var(--line);border-radius:5px;background:#fff;
  cursor:pointer;user-select:none;-webkit-user-select:none}
.thumb.odd{border:2px solid var(--odd);padding:3px}
.thumb:target{outline:3px solid #0a66ff;outline-offset:2px}
.thumb:focus{outline:none}
.thumb:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
.thumb.sel{background:#d7e6ff;box-shadow:0 0 0 3px #0a66ff}
.part[hidden],.review[hidden]{display:none}
.review{flex-basis:100%;display:flex;flex-wrap:wrap;gap:6px 8px;align-items:center}
.review button,.review select,.chead button,.chead select{font:inherit;font-size:13px;padding:2px 10px;
  border:1px solid #b9b9b9;border-radius:5px;background:#fff;color:inherit;cursor:pointer}
.review button:disabled,.chead button:disabled{opacity:.45;cursor:default}
.review label{display:inline-flex;gap:4px;align-items:center}
.review .sep{width:1px;align-self:stretch;background:var(--line);margin:0 4px}
#sel-count{font-weight:600;min-width:6.5em}
.review .hint{color:var(--muted);font-size:12px;border-bottom:1px dotted var(--muted);cursor:help}
#review-status{color:var(--muted);font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
  max-width:40em}
.chead{display:flex;flex-wrap:wrap;align-items:center;gap:6px 18px}
.chead + .part.moved{margin-top:10px}
.chead .merge{color:var(--muted);font-size:13px;display:inline-flex;gap:6px;align-items:center}
.cname{font:inherit;font-weight:700;color:inherit;border:1px solid #d6d6d6;border-radius:4px;padding:0 4px;
  background:#fff;min-width:4ch;max-width:40ch}
.cname:hover,.cname:focus{border-color:#888}
.cname.dup{border-color:#d49a00;background:#fff6d9}
.frame{position:relative;width:var(--t);height:var(--t);display:flex;align-items:center;justify-content:center;background:#eee}
.frame .pic{display:block;max-width:var(--t);max-height:var(--t)}
.frame .wrap{position:relative;line-height:0}
.heat{display:none;position:absolute;left:0;top:0;width:100%;height:100%;opacity:.75;pointer-events:none}
body.show-heat .heat{display:block}
.thumb figcaption{font-size:11px;line-height:1.25;margin-top:3px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.thumb .lab{color:var(--muted)}
.thumb.odd .lab{color:var(--odd);font-weight:700}
#selfcheck{display:none}
.kctl{display:inline-flex;align-items:center;gap:6px;flex-wrap:wrap}
.kctl[hidden]{display:none}
.kctl label{font-weight:600}
.kctl button,.kctl select{font:inherit;font-size:13px;padding:2px 8px;border:1px solid #b9b9b9;border-radius:5px;
  background:#fff;color:inherit;cursor:pointer}
.kctl button{min-width:2em}
.kctl button:disabled{opacity:.45;cursor:default}
.k-note{color:var(--muted);font-size:12px}
svg.kcurve{display:block;overflow:visible}
.kcurve .line{fill:none;stroke:#888;stroke-width:1.2}
.kcurve .kpt{cursor:pointer}
.kcurve .hit{fill:transparent}
.kcurve .kpt:hover .hit{fill:#eee}
.kcurve .kpt.on .hit{fill:#d7e6ff}
.kcurve .dot{fill:#555}
.kcurve .kpt.on .dot{fill:#0a66ff;r:4px}
.kcurve .ring{fill:none;stroke:#d62728;stroke-width:1.5}
.kcurve text{font-size:9px;fill:var(--muted);text-anchor:middle}
.kcurve .kpt.chosen text{fill:#d62728;font-weight:700}
.kcurve .kpt.on text{fill:#0a66ff;font-weight:700}
"""

# The base script: the heat-map switch and the self-check.
# The self-check runs only when the page is opened with `?selfcheck`: it toggles the heat-map
# switch the way a user would and records what is actually laid out and visible, so a headless
# browser's --dump-dom shows whether the page works (see tests/test_report_browser.py).
_BASE_JS = """
(function(){
  var sw=document.getElementById('heat-switch');
  function apply(){document.body.classList.toggle('show-heat',sw.checked);}
  sw.addEventListener('change',apply);apply();
  function visible(el){
    if(!el)return false;
    var r=el.getBoundingClientRect(),s=getComputedStyle(el);
    return r.width>0&&r.height>0&&s.display!=='none'&&s.visibility!=='hidden'&&parseFloat(s.opacity)>0;
  }
  function loaded(img){
    if(img.complete&&img.naturalWidth>0)return Promise.resolve(true);
    return new Promise(function(done){
      img.addEventListener('load',function(){done(true)},{once:true});
      img.addEventListener('error',function(){done(false)},{once:true});
      setTimeout(function(){done(img.complete&&img.naturalWidth>0)},3000);
    });
  }
  function all(sel){return Array.prototype.slice.call(document.querySelectorAll(sel));}
  async function selfCheck(){
    var res={};
    var clusters=all('section.cluster');
    res.clusters=clusters.length;
    res.clusters_visible=clusters.filter(visible).length;
    var pics=all('img.pic');
    res.thumbnails=pics.length;
    res.thumbnails_laid_out=pics.filter(visible).length;
    var first=pics[0];
    if(first){first.scrollIntoView();res.first_thumbnail_loaded=await loaded(first);}
    var heat=document.querySelector('.heat');
    res.switch_visible=visible(sw.closest('label'));
    res.heat_hidden_before=!visible(heat);
    sw.click();
    res.heat_visible_after=visible(heat)&&(heat?await loaded(heat):false);
    res.heat_overlays_visible=all('.heat').filter(visible).length;
    var map=document.getElementById('map');
    res.map_visible=visible(map);
    res.map_points=all('#map circle').length;
    res.map_points_visible=all('#map circle').filter(visible).length;
    res.dendrogram_visible=visible(document.getElementById('dendrogram'));
    res.review_visible=visible(document.getElementById('review'));
    res.k_control_visible=visible(document.getElementById('k-control'));
    window.scrollTo(0,0);
    var out=document.getElementById('selfcheck');
    out.textContent=JSON.stringify(res);
    out.setAttribute('data-done','1');
  }
  if(/[?&]selfcheck\\b/.test(location.search)){
    if(document.readyState==='complete')selfCheck();else window.addEventListener('load',selfCheck);
  }
})();
"""


# Review and correct (docs/REPORT.md): name clusters, move images between them, merge clusters,
# mark images "not a defect" or "exclude", undo, and download labels.csv. Every edit changes one
# small model (image -> group, cluster names, undo history), which render() draws into the page by
# moving the page's own figures; selecting touches only the figures whose state changes. Cluster
# names are user input: they only ever reach the page as text (textContent, value), never as HTML.
REVIEW_JS = r"""
(function(){
  'use strict';
  var dataEl = document.getElementById('review-data'), bar = document.getElementById('review');
  if (!dataEl || !bar || !document.querySelector('main')) return;
  var DATA = JSON.parse(dataEl.textContent);
  var RUN = document.body.getAttribute('data-run') || '';
  var KEY = 'anoclust-review:' + RUN;  // the shown clustering's saved edits (init() changes it)
  // Groups that are not clusters, shown after the clusters in this order; all three are "normal"
  // in labels.csv except "excluded", which is left out.
  var SPECIAL = ['normal', 'nodefect', 'excluded'];
  var TITLE = {normal: 'Set apart as normal', nodefect: 'Not a defect', excluded: 'Excluded'};
  var LINK = {normal: 'normal', nodefect: 'not a defect', excluded: 'excluded'};
  var SECTION_ID = {normal: 'normal', nodefect: 'not-a-defect', excluded: 'excluded'};
  var NOTE = {nodefect: 'Marked as not a defect: labelled normal in labels.csv.',
              excluded: 'Left out of labels.csv.'};

  var $ = DOM.$, all = DOM.all, el = DOM.el, plural = DOM.plural;
  function isCluster(g) { return /^[0-9]+$/.test(g); }
  function quoted(text) { return '\u201c' + text + '\u201d'; }
  function say(text) { $('review-status').textContent = text; $('review-status').title = text; }

  var normalSet = document.querySelector('main section.normal-set');  // the run's own "normal" group
  if (normalSet) normalSet.setAttribute('data-g', 'normal');

  // ---- the page's images: figures, absolute paths, place on the page as laid out ----
  var figs = [], paths = [], rank = [], home = [], homeGroup = [];
  all('main figure.thumb').forEach(function (f) {
    var i = +f.getAttribute('data-i'), hex = f.getAttribute('data-path-bytes');
    figs[i] = f;
    paths[i] = hex ? hexBytes(hex) : f.getAttribute('data-path') || '';  // bytes: a name that is not UTF-8
  });
  var N = figs.length;
  if (N !== DATA.clusters.length) return;
  function idx(f) { return +f.getAttribute('data-i'); }
  function isFig(e) { return !!(e && e.classList && e.classList.contains('thumb') && e.hasAttribute('data-i')); }

  // ---- the model ----
  // BASE: the clustering the review starts from (image -> cluster number or "normal"); M: the
  // review, {of: group id per image, groups: {cluster id: {name}}, next: id of the next new
  // cluster, history: steps}. A group id is a cluster number as text or one of SPECIAL. A step
  // {d: description, m: [[image, from, to]...], g: [[cluster, before, after]...], n: [next before,
  // next after]} is applied forwards by an edit and backwards by undo.
  var BASE, M;
  function fresh() {
    var of = [], groups = {}, next = 0;
    BASE.forEach(function (c, i) {
      var g = String(c);
      of[i] = g;
      if (isCluster(g)) { groups[g] = groups[g] || {name: g}; next = Math.max(next, +g + 1); }
    });
    return {of: of, groups: groups, next: next, history: []};
  }
  function known(g) { return typeof g === 'string' && (SPECIAL.indexOf(g) >= 0 || isCluster(g)); }
  function valid(s) {
    if (!s || s.v !== 1 || !Array.isArray(s.of) || s.of.length !== N || !s.groups || typeof s.groups !== 'object'
        || typeof s.next !== 'number' || !Array.isArray(s.history)) return false;
    for (var g in s.groups) {
      if (!isCluster(g) || !s.groups[g] || typeof s.groups[g].name !== 'string' || +g >= s.next) return false;
    }
    var ok = s.of.every(function (g) { return SPECIAL.indexOf(g) >= 0 || s.groups.hasOwnProperty(g); });
    return ok && s.history.every(function (t) {
      return t && Array.isArray(t.m) && t.m.every(function (x) {
        return Array.isArray(x) && x[0] >= 0 && x[0] < N && known(x[1]) && known(x[2]);
      }) && (!t.g || Array.isArray(t.g));
    });
  }
  function restore() {
    var raw = null;
    try { raw = localStorage.getItem(KEY); }
    catch (e) { say('This browser keeps no edits for pages opened from files: ' + e.message); }
    if (!raw) return fresh();
    try {
      var s = JSON.parse(raw);
      if (valid(s)) return {of: s.of, groups: s.groups, next: s.next, history: s.history};
    } catch (e) { /* unreadable: start afresh */ }
    say('The saved edits of this run could not be read; showing the run\u2019s clusters.');
    return fresh();
  }
  function save() {
    try {
      if (M.history.length) {
        localStorage.setItem(KEY, JSON.stringify({v: 1, of: M.of, groups: M.groups, next: M.next, history: M.history}));
      } else {
        localStorage.removeItem(KEY);  // nothing left to undo: the run's clusters as they were
      }
    } catch (e) { say('The edits could not be saved in this browser: ' + e.message); }
    document.dispatchEvent(new Event('anoclust-review-saved'));
  }
  function apply(step, back) {
    step.m.forEach(function (x) { M.of[x[0]] = back ? x[1] : x[2]; });
    (step.g || []).forEach(function (x) {
      var v = back ? x[1] : x[2];
      if (v) M.groups[x[0]] = {name: v.name}; else delete M.groups[x[0]];
    });
    if (step.n) M.next = step.n[back ? 0 : 1];
  }
  function name(g) { return isCluster(g) ? M.groups[g].name : LINK[g]; }
  function label(i) {  // the image's label in labels.csv (null: left out)
    var g = M.of[i];
    return g === 'excluded' ? null : isCluster(g) ? M.groups[g].name : 'normal';
  }

  // ---- sections ----
  var S = {};  // group id -> {sec, size, moved: grid for images from elsewhere, name, mergeSel, mergeBtn}
  function newGrid() {
    var grid = el('div', 'grid');
    grid.setAttribute('role', 'listbox'); grid.setAttribute('aria-multiselectable', 'true');
    grid.setAttribute('aria-label', 'images');
    return grid;
  }
  function fitName(input) { input.style.width = Math.max(4, Math.min(40, input.value.length + 2)) + 'ch'; }
  function header(s, g) {
    var head = el('div', 'chead'), h2 = el('h2'), input = el('input', 'cname'), size = el('span', 'size');
    input.type = 'text'; input.spellcheck = false; input.autocomplete = 'off'; input.maxLength = 200;
    input.setAttribute('aria-label', 'name of cluster ' + g);
    input.title = 'The cluster\u2019s name: its images\u2019 label in labels.csv';
    h2.append('Cluster ', input, size);
    var box = el('span', 'merge'), select = el('select'), button = el('button', null, 'Merge');
    button.type = 'button';
    select.setAttribute('aria-label', 'cluster to merge this one into');
    box.append('merge into', select, button);
    head.append(h2, box);
    var old = s.sec.querySelector(':scope > .chead') || s.sec.querySelector('h2');
    if (old) old.replaceWith(head); else s.sec.insertBefore(head, s.sec.firstChild);
    input.addEventListener('change', function () { rename(g, input); });
    input.addEventListener('input', function () { fitName(input); });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') { e.preventDefault(); rename(g, input); }
      else if (e.key === 'Escape') { input.value = M.groups[g].name; fitName(input); }
    });
    button.addEventListener('click', function () { if (select.value) merge(g, select.value); });
    s.name = input; s.size = size; s.mergeSel = select; s.mergeBtn = button;
  }
  function adopt(sec, g) {
    var s = {sec: sec, size: sec.querySelector('h2 .size'), moved: sec.querySelector('.part.moved .grid')};
    S[g] = s;
    if (isCluster(g)) header(s, g);
    return s;
  }
  function colour(c) {
    var p = DATA.palette || [];
    return c < p.length ? p[c] : 'hsl(' + Math.round((c * 137.508) % 360) + ',60%,40%)';
  }
  function section(g) {  // the group's section, made (in its place on the page) when missing
    if (S[g]) return S[g];
    var sec = el('section', isCluster(g) ? 'cluster' : 'review-set'), before = null, box;
    sec.id = isCluster(g) ? 'cluster-' + g : SECTION_ID[g];
    sec.setAttribute('data-g', g);
    if (isCluster(g)) {
      sec.style.setProperty('--c', colour(+g));
      box = $('clusters');
      all('section[data-g]', box).some(function (o) { return +o.getAttribute('data-g') > +g && (before = o); });
    } else {
      var h2 = el('h2', null, TITLE[g]);
      h2.appendChild(el('span', 'size'));
      sec.appendChild(h2);
      if (NOTE[g]) sec.appendChild(el('p', 'note', NOTE[g]));
      box = document.querySelector('main');
      SPECIAL.slice(SPECIAL.indexOf(g) + 1).some(function (h) { return S[h] && (before = S[h].sec); });
    }
    box.insertBefore(sec, before);
    return adopt(sec, g);
  }
  function movedGrid(g) {  // where images from other groups go in g's section
    var s = section(g);
    if (!s.moved) {
      var part = el('div', 'part moved');
      if (s.sec.querySelector('.grid')) part.appendChild(el('h3', null, 'Moved here'));
      s.moved = newGrid();
      part.appendChild(s.moved);
      s.sec.appendChild(part);
    }
    return s.moved;
  }
  // ---- drawing the model ----
  var order = null, pos = [];  // figures in page order, and each image's place in it
  function scan() {  // the page as laid out for BASE: each image's home grid, group and place
    S = {}; order = null; pos = [];
    all('main section[data-g]').forEach(function (sec) { adopt(sec, sec.getAttribute('data-g')); });
    all('main figure.thumb').forEach(function (f, r) {
      var i = idx(f);
      rank[i] = r; home[i] = f.parentNode; homeGroup[i] = f.closest('section').getAttribute('data-g');
    });
  }
  function pageOrder() {
    if (!order) {
      order = all('main figure.thumb');
      order.forEach(function (f, p) { pos[idx(f)] = p; });
    }
    return order;
  }
  function place(grid, list) {  // insert the figures of `list` into grid, keeping page-as-built order
    list.sort(function (a, b) { return rank[a] - rank[b]; });
    var child = grid.firstElementChild;
    list.forEach(function (i) {
      while (child && rank[idx(child)] < rank[i]) child = child.nextElementSibling;
      grid.insertBefore(figs[i], child);
    });
  }
  function fill(select, groups, except) {
    var keep = select.value;
    select.textContent = '';
    groups.forEach(function (g) {
      if (g === except) return;
      var o = el('option', null, M.groups[g].name);
      o.value = g;
      select.appendChild(o);
    });
    if (keep && groups.indexOf(keep) >= 0 && keep !== except) select.value = keep;
  }
  function render() {
    var count = {}, incoming = new Map(), i, g;
    for (i = 0; i < N; i++) {
      g = M.of[i];
      count[g] = (count[g] || 0) + 1;
      var grid = g === homeGroup[i] ? home[i] : movedGrid(g);
      if (figs[i].parentNode !== grid) {
        if (!incoming.has(grid)) incoming.set(grid, []);
        incoming.get(grid).push(i);
      }
    }
    incoming.forEach(function (list, grid) { place(grid, list); });
    if (incoming.size) order = null;
    var clusters = Object.keys(M.groups).filter(function (h) { return count[h]; })
      .sort(function (a, b) { return a - b; });
    var names = {};
    clusters.forEach(function (h) { var n = M.groups[h].name; names[n] = (names[n] || 0) + 1; });
    Object.keys(S).forEach(function (h) { if (!count[h]) S[h].sec.hidden = true; });
    clusters.concat(SPECIAL).forEach(function (h) {
      var n = count[h] || 0;
      if (!n) return;
      var s = section(h), sec = s.sec;
      sec.hidden = false;
      s.size.textContent = plural(n, 'image');
      all(':scope > .part', sec).forEach(function (p) { p.hidden = !p.querySelector('figure'); });
      var stops = all('figure.thumb[tabindex="0"]', sec);  // one Tab stop per section
      stops.slice(1).forEach(function (f) { f.tabIndex = -1; });
      if (!stops.length) sec.querySelector('figure.thumb').tabIndex = 0;
      if (s.name) {
        var nm = M.groups[h].name, dup = names[nm] > 1 || nm === 'normal';
        if (document.activeElement !== s.name) s.name.value = nm;
        fitName(s.name);
        s.name.classList.toggle('dup', dup);
        s.name.title = dup ? (nm === 'normal' ? 'Named like the images that are not defects: '
          : 'Another cluster has this name: ') + 'their images get the same label in labels.csv'
          : 'The cluster\u2019s name: its images\u2019 label in labels.csv';
        fill(s.mergeSel, clusters, h);
        s.mergeBtn.disabled = !s.mergeSel.options.length;
      }
    });
    var links = $('cluster-links');
    links.textContent = '';
    clusters.concat(SPECIAL).forEach(function (h) {
      if (!count[h]) return;
      var a = el('a');
      a.href = '#' + S[h].sec.id;
      if (isCluster(h)) {
        var chip = el('span', 'chip');
        chip.style.setProperty('--c', S[h].sec.style.getPropertyValue('--c'));
        a.appendChild(chip);
      }
      a.appendChild(document.createTextNode(name(h) + ' (' + count[h] + ')'));
      links.append(a, ' ');
    });
    fill($('move-target'), clusters, null);
    var last = M.history[M.history.length - 1];
    $('undo').disabled = !last;
    $('undo').title = last ? 'Undo: ' + last.d + ' (Ctrl/Cmd+Z)' : 'Nothing to undo';
    $('reset').disabled = !last;
    selectionShown();
    barHeight();
  }
  function barHeight() {
    document.documentElement.style.setProperty('--bar', document.querySelector('nav.toolbar').offsetHeight + 'px');
  }

  // ---- selection: only figures whose state changes are touched ----
  var sel = new Set(), anchor = null, kept = [];  // kept: what a Shift range adds to
  function mark(i, on) {
    figs[i].classList.toggle('sel', on);
    figs[i].setAttribute('aria-selected', on ? 'true' : 'false');
  }
  function select(list) {
    var next = new Set(list);
    sel.forEach(function (i) { if (!next.has(i)) mark(i, false); });
    next.forEach(function (i) { if (!sel.has(i)) mark(i, true); });
    sel = next;
    selectionShown();
  }
  function setAnchor(i) { anchor = i; kept = Array.from(sel); }
  function toggle(i) {
    var list = Array.from(sel).filter(function (j) { return j !== i; });
    if (!sel.has(i)) list.push(i);
    select(list);
  }
  function range(a, b) {
    var o = pageOrder(), lo = Math.min(pos[a], pos[b]), hi = Math.max(pos[a], pos[b]);
    return o.slice(lo, hi + 1).map(idx);
  }
  function selected() { return Array.from(sel).sort(function (a, b) { return a - b; }); }
  function selectionShown() {
    var n = sel.size, target = $('move-target');
    $('sel-count').textContent = n + ' selected';
    $('move').disabled = !n || !target.options.length;
    ['move-new', 'mark-nodefect', 'mark-exclude'].forEach(function (id) { $(id).disabled = !n; });
  }
  function tabStop(f) {  // one figure per section is reached with Tab: the last one used
    all('figure.thumb[tabindex="0"]', f.closest('section')).forEach(function (o) { if (o !== f) o.tabIndex = -1; });
    f.tabIndex = 0;
  }
  function focusFig(f) { tabStop(f); f.focus(); }

  // ---- edits ----
  function commit(step) {
    var moved = new Set(step.m.map(function (x) { return x[0]; }));
    var active = document.activeElement, after = null;
    if (isFig(active) && moved.has(idx(active))) {  // keep the keyboard where it was
      var o = pageOrder(), p = pos[idx(active)], j;
      for (j = p + 1; j < o.length && !after; j++) if (!moved.has(idx(o[j]))) after = o[j];
      for (j = p - 1; j >= 0 && !after; j--) if (!moved.has(idx(o[j]))) after = o[j];
    }
    apply(step, false);
    M.history.push(step);
    save();
    if (moved.size) { select([]); anchor = null; kept = []; }
    render();
    if (after) focusFig(after);
    say(step.d.charAt(0).toUpperCase() + step.d.slice(1) + '.');
  }
  function moveSelected(to, what) {
    var m = selected().filter(function (i) { return M.of[i] !== to; }).map(function (i) { return [i, M.of[i], to]; });
    if (!m.length) { say('The selected images are already in ' + what + '.'); return; }
    commit({d: 'moved ' + plural(m.length, 'image') + ' to ' + what, m: m});
  }
  function moveToNew() {
    var g = String(M.next), list = selected();
    if (!list.length) return;
    commit({d: 'moved ' + plural(list.length, 'image') + ' to the new cluster ' + g,
            m: list.map(function (i) { return [i, M.of[i], g]; }), g: [[g, null, {name: g}]], n: [M.next, M.next + 1]});
  }
  function merge(src, dst) {
    var m = [];
    M.of.forEach(function (g, i) { if (g === src) m.push([i, src, dst]); });
    commit({d: 'merged ' + quoted(M.groups[src].name) + ' into ' + quoted(M.groups[dst].name) + ' ('
            + plural(m.length, 'image') + ')', m: m});
  }
  function rename(g, input) {
    var old = M.groups[g].name, v = input.value.trim();
    if (!v) { input.value = old; fitName(input); say('A cluster needs a name; kept ' + quoted(old) + '.'); return; }
    if (v !== input.value) input.value = v;
    if (v === old) return;
    commit({d: 'renamed ' + quoted(old) + ' to ' + quoted(v), m: [], g: [[g, {name: old}, {name: v}]]});
  }
  function undo() {
    var step = M.history.pop();
    if (!step) { say('Nothing to undo.'); return; }
    var hadFocus = isFig(document.activeElement);
    apply(step, true);
    save();
    render();
    var back = step.m.map(function (x) { return x[0]; });
    if (back.length) {  // the images that went back are selected, where they are now
      select(back); anchor = null; kept = [];
      if (hadFocus && !isFig(document.activeElement)) {
        pageOrder();
        focusFig(figs[back.reduce(function (a, b) { return pos[a] <= pos[b] ? a : b; })]);
      }
    }
    say('Undone: ' + step.d + '.');
  }
  function csvField(v) {
    v = String(v);
    return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }
  function csvBytes(b) {  // the same quoting for a field given as bytes (" , LF CR are ASCII)
    var n = 0, quote = false, j, k = 0;
    for (j = 0; j < b.length; j++) {
      if (b[j] === 34) n++;
      if (b[j] === 34 || b[j] === 44 || b[j] === 10 || b[j] === 13) quote = true;
    }
    if (!quote) return b;
    var out = new Uint8Array(b.length + n + 2);
    out[k++] = 34;
    for (j = 0; j < b.length; j++) { out[k++] = b[j]; if (b[j] === 34) out[k++] = 34; }
    out[k] = 34;
    return out;
  }
  function hexBytes(hex) {
    var b = new Uint8Array(hex.length >> 1);
    for (var j = 0; j < b.length; j++) b[j] = parseInt(hex.substr(2 * j, 2), 16);
    return b;
  }
  function labelsCsv() {  // RFC 4180 (CRLF line ends; fields with , " or line breaks quoted): Blob parts
    var parts = ['path,label,cluster\r\n'];
    for (var i = 0; i < N; i++) {
      var lab = label(i);
      if (lab === null) continue;
      parts.push(typeof paths[i] === 'string' ? csvField(paths[i]) : csvBytes(paths[i]));
      parts.push(',' + csvField(lab) + ',' + csvField(BASE[i]) + '\r\n');
    }
    return parts;
  }
  function download() {
    var url = URL.createObjectURL(new Blob(labelsCsv(), {type: 'text/csv;charset=utf-8'}));
    var a = el('a');
    a.href = url; a.download = 'labels.csv'; a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    var rows = M.of.filter(function (g) { return g !== 'excluded'; }).length;
    say('labels.csv: ' + plural(rows, 'image') + (rows < N ? ', ' + (N - rows) + ' excluded' : '') + '.');
  }

  // ---- mouse and keyboard ----
  document.addEventListener('click', function (e) {
    var f = e.target.closest ? e.target.closest('main figure.thumb') : null;
    if (!f) return;
    var i = idx(f), add = e.ctrlKey || e.metaKey;
    if (e.shiftKey && anchor !== null) select(kept.concat(range(anchor, i)));
    else if (add) { toggle(i); setAnchor(i); }
    else { select([i]); setAnchor(i); }
    tabStop(f);
  });
  function typing(t) {
    return t && (t.tagName === 'TEXTAREA' || t.isContentEditable
      || (t.tagName === 'INPUT' && /^(text|search|number|email|url|)$/.test(t.type)));
  }
  function vertical(f, dir) {  // the figure in the next row up or down, nearest horizontally
    var o = pageOrder(), r = f.getBoundingClientRect(), x = r.left + r.width / 2, best = null, dx = Infinity, row = null;
    for (var j = pos[idx(f)] + dir; j >= 0 && j < o.length; j += dir) {
      var q = o[j].getBoundingClientRect();
      if (dir > 0 ? q.top < r.top + r.height / 2 : q.top > r.top - r.height / 2) continue;  // same row
      if (row === null) row = q.top; else if (Math.abs(q.top - row) > 2) break;
      var d = Math.abs(q.left + q.width / 2 - x);
      if (d < dx) { dx = d; best = o[j]; }
    }
    return best;
  }
  document.addEventListener('keydown', function (e) {
    var t = e.target, k = e.key, mod = e.ctrlKey || e.metaKey;
    if (typing(t) || e.altKey) return;
    if (mod && !e.shiftKey && (k === 'z' || k === 'Z')) { e.preventDefault(); undo(); return; }
    if (k === 'Escape') { if (sel.size) { select([]); anchor = null; kept = []; say('Selection cleared.'); } return; }
    if (!isFig(t)) return;
    var i = idx(t), o = pageOrder(), next = null;
    if (mod && (k === 'a' || k === 'A')) {
      e.preventDefault();
      select(all('figure.thumb', t.closest('section')).map(idx));
      setAnchor(i);
      return;
    }
    if (k === ' ' || k === 'Spacebar') { e.preventDefault(); toggle(i); setAnchor(i); return; }
    if (mod) return;
    if (k === 'n' || k === 'd' || k === 'x') {  // the toolbar's actions, without leaving the images
      e.preventDefault();
      if (!sel.size) say('Select images first (Space or a click).');
      else if (k === 'n') moveToNew(); else if (k === 'd') markNoDefect(); else markExcluded();
      return;
    }
    if (k === 'ArrowRight') next = o[pos[i] + 1];
    else if (k === 'ArrowLeft') next = o[pos[i] - 1];
    else if (k === 'ArrowDown') next = vertical(t, 1);
    else if (k === 'ArrowUp') next = vertical(t, -1);
    else if (k === 'Home' || k === 'End') {
      var mine = all('figure.thumb', t.closest('section'));
      next = mine[k === 'Home' ? 0 : mine.length - 1];
    } else return;
    e.preventDefault();
    if (!next) return;
    if (e.shiftKey) {
      if (anchor === null || !sel.has(i)) setAnchor(i);
      select(kept.concat(range(anchor, idx(next))));
    }
    focusFig(next);
  });
  $('move').addEventListener('click', function () {
    var g = $('move-target').value;
    if (g) moveSelected(g, quoted(M.groups[g].name));
  });
  $('move-new').addEventListener('click', moveToNew);
  function markNoDefect() { moveSelected('nodefect', '\u201cNot a defect\u201d'); }
  function markExcluded() { moveSelected('excluded', '\u201cExcluded\u201d'); }
  $('mark-nodefect').addEventListener('click', markNoDefect);
  $('mark-exclude').addEventListener('click', markExcluded);
  $('undo').addEventListener('click', undo);
  $('download').addEventListener('click', download);
  $('reset').addEventListener('click', function () {
    if (!M.history.length) return;
    if (!window.confirm('Discard every edit of this clustering (names, moves, marks) and its undo history?')) return;
    M = fresh();
    save();
    select([]); anchor = null; kept = [];
    render();
    say('All edits discarded: the run\u2019s clusters as they were.');
  });
  window.addEventListener('storage', function (e) {  // the same report open in another tab
    if (e.key !== KEY && e.key !== null) return;
    M = restore();
    select([]); anchor = null; kept = [];
    render();
    say('Updated with the edits made in another window.');
  });
  window.addEventListener('resize', barHeight);

  // Start from `clusters` (image -> cluster number or "normal"), the clustering the page is laid
  // out for (each cluster's section holding its images), with the edits saved for it under `key`
  // (the clustering's run key; by default one derived from the clusters). Edits of another
  // clustering stay saved under its own key.
  function fnv(text) {
    var h = 0x811c9dc5;
    for (var j = 0; j < text.length; j++) { h ^= text.charCodeAt(j); h = Math.imul(h, 0x01000193) >>> 0; }
    return ('0000000' + h.toString(16)).slice(-8);
  }
  function init(clusters, key) {
    if (!Array.isArray(clusters) || clusters.length !== N) throw new Error('init: one cluster per image, please');
    BASE = clusters.map(String);
    KEY = 'anoclust-review:' + (key || RUN + '/' + fnv(JSON.stringify(BASE)));
    select([]); anchor = null; kept = [];
    scan();
    M = restore();
    render();
  }
  init(DATA.clusters, RUN);
  bar.hidden = false;
  barHeight();
  window.anoclustReview = {
    init: init,
    model: function () { return M; },
    key: function () { return KEY; },
    render: render
  };
})();
"""

# The k control (docs/REPORT.md): the run kept its clustering at every k; the page holds, per k,
# each cluster's members in order (most typical first), majority labels, the table by labels,
# scores and the dendrogram's colours, and shows any k in place by moving the page's own figures
# into new sections. The review then restarts from that k's clustering with the edits saved for
# it (window.anoclustReview.init). The shown k is kept in the address (?k=N).
K_JS = r"""
(function(){
  'use strict';
  var dataEl = document.getElementById('k-data'), box = document.getElementById('k-control');
  if (!dataEl || !box) return;
  var D = JSON.parse(dataEl.textContent), byK = {};
  D.by.forEach(function (e) { byK[e.k] = e; });
  var MIXED = '#9a9a9a', ODD = "\nlabel differs from the cluster's majority";
  var SORTED = 'Sorted by distance to the cluster centre, most typical first.';
  var $ = DOM.$, all = DOM.all, el = DOM.el, plural = DOM.plural;
  function colour(c) {
    return c < 0 ? MIXED : c < D.palette.length ? D.palette[c] : 'hsl(' + Math.round((c * 137.508) % 360) + ',60%,40%)';
  }
  var figs = [], points = [];
  all('main figure.thumb').forEach(function (f) { figs[+f.getAttribute('data-i')] = f; });
  var N = figs.length, map = $('map'), tree = $('dendrogram');
  if (map) all('a', map).forEach(function (a) {
    var m = /^#img-([0-9]+)$/.exec(a.getAttribute('href') || '');
    if (m) points[+m[1]] = a;
  });
  var names = figs.map(function (f) { var im = f.querySelector('img.pic'); return im ? im.alt : ''; });
  var select = $('k-select'), minus = $('k-minus'), plus = $('k-plus'), curve = $('k-curve');
  var shown = D.base;

  function labelsAt(e) {  // image -> cluster at e.k (-2: set apart as normal)
    var lab = [], off = 0, i, c, j;
    for (i = 0; i < N; i++) lab[i] = -2;
    for (c = 0; c < e.sizes.length; c++) {
      for (j = off; j < off + e.sizes[c]; j++) lab[e.order[j]] = c;
      off += e.sizes[c];
    }
    return lab;
  }
  function part(sec, title, list) {
    var p = el('div', 'part'), grid = el('div', 'grid');
    grid.setAttribute('role', 'listbox'); grid.setAttribute('aria-multiselectable', 'true');
    grid.setAttribute('aria-label', 'images');
    list.forEach(function (i) { figs[i].tabIndex = -1; grid.appendChild(figs[i]); });
    p.append(el('h3', null, title), grid);
    sec.appendChild(p);
  }
  function section(e, c, members) {  // as page.py writes a cluster's section
    var sec = el('section', 'cluster'), h2 = el('h2', null, 'Cluster ' + c), n = members.length, note = el('p', 'note');
    sec.id = 'cluster-' + c; sec.setAttribute('data-g', String(c));
    sec.style.setProperty('--c', colour(c));
    h2.appendChild(el('span', 'size', plural(n, 'image')));
    if (D.truth) {
      var other = n - e.share[c];
      note.append('Majority label ', el('b', null, D.classes[e.major[c]]), ' (' + e.share[c] + ' of ' + n + '); '
        + (other ? plural(other, 'member') + ' with another label, outlined in red' : 'no other label') + '. ' + SORTED);
    } else note.textContent = SORTED;
    sec.append(h2, note);
    part(sec, 'Most typical', members.slice(0, D.typical));
    if (n > D.typical) part(sec, 'All other members', members.slice(D.typical));
    return sec;
  }
  function sections(e) {  // every image back in its section at e.k; the review's own sections go
    var box = $('clusters'), frag = document.createDocumentFragment(), off = 0;
    e.sizes.forEach(function (n, c) { frag.appendChild(section(e, c, e.order.slice(off, off + n))); off += n; });
    var normal = document.querySelector('main section.normal-set .grid');
    if (normal) D.normal.forEach(function (i) { figs[i].tabIndex = -1; normal.appendChild(figs[i]); });
    all('main section.review-set, main .part.moved').forEach(function (x) { x.remove(); });
    box.textContent = '';
    box.appendChild(frag);
  }
  function marks(e, lab) {  // red outlines, tooltips and the map's points
    var order = [], i;
    for (i = 0; i < N; i++) {
      var c = lab[i], odd = !!D.truth && c >= 0 && D.truth[i] !== e.major[c], f = figs[i];
      f.classList.toggle('odd', odd);
      var tip = f.title.slice(-ODD.length) === ODD ? f.title.slice(0, -ODD.length) : f.title;
      f.title = odd ? tip + ODD : tip;
      var a = points[i];
      if (!a) continue;
      var dot = a.querySelector('circle');
      dot.setAttribute('fill', colour(c));
      dot.classList.toggle('odd', odd);
      dot.querySelector('title').textContent = names[i] + ' \u2014 ' + (c >= 0 ? 'cluster ' + c : 'set apart as normal')
        + (D.truth ? ', label ' + D.classes[D.truth[i]] : '');
      order.push(i);
    }
    // the largest cluster first, so the points of small clusters stay on top (as page.py draws them)
    order.sort(function (x, y) { return lab[x] - lab[y] || x - y; });
    order.forEach(function (j) { map.appendChild(points[j]); });
  }
  function facts(e) {
    function put(name, v) { var b = document.querySelector('[data-fact="' + name + '"] b'); if (b) b.textContent = v; }
    put('clusters', e.sizes.length);
    Object.keys(e.metrics || {}).forEach(function (m) { put(m, e.metrics[m]); });
    if (D.truth) put('odd', e.sizes.reduce(function (s, n, c) { return s + n - e.share[c]; }, 0));
  }
  function table(e) {
    var t = $('contingency'), T = e.table;
    if (!t || !T) return;
    var body = el('tbody'), head = el('tr');
    head.appendChild(el('th'));
    T.cols.forEach(function (c) { head.appendChild(el('th', null, D.classes[c])); });
    body.appendChild(head);
    T.rows.forEach(function (r, i) {
      var tr = el('tr'), th = el('th'), a = el('a'), chip = el('span', 'chip');
      a.href = '#cluster-' + r;
      chip.style.setProperty('--c', colour(r));
      a.append(chip, 'cluster ' + r);
      th.appendChild(a);
      tr.appendChild(th);
      T.cells[i].forEach(function (v, j) {
        tr.appendChild(el('td', i === j && i < T.match ? 'diag' : v === 0 ? 'zero' : '', String(v)));
      });
      body.appendChild(tr);
    });
    t.textContent = '';
    t.appendChild(body);
  }
  function dendrogram(e) {
    if (!tree || !e.tree) return;
    var lines = all('g > path', tree), bars = all('a > rect', tree), c = e.tree.c;
    lines.forEach(function (p, j) { p.setAttribute('stroke', colour(c[j])); });
    bars.forEach(function (r, j) {
      var v = c[lines.length + j], a = r.parentNode, t = r.querySelector('title');
      r.setAttribute('fill', colour(v));
      if (!/^#img-/.test(a.getAttribute('href'))) a.setAttribute('href', v >= 0 ? '#cluster-' + v : '#clusters');
      t.textContent = t.textContent.split(',')[0] + ', ' + (v >= 0 ? 'cluster ' + v : 'several clusters');
    });
    var cut = tree.querySelector('line');
    if (cut) {
      if (e.tree.y === null) cut.setAttribute('display', 'none');
      else {
        cut.removeAttribute('display');
        cut.setAttribute('y1', e.tree.y); cut.setAttribute('y2', e.tree.y);
      }
      cut.querySelector('title').textContent = 'cut into ' + e.sizes.length + ' clusters';
    }
    all('.k-now').forEach(function (s) { s.textContent = e.sizes.length; });
  }
  function links(e) {  // without the review (which writes them with the names), plain links
    var box = $('cluster-links');
    box.textContent = '';
    e.sizes.forEach(function (n, c) {
      var a = el('a'), chip = el('span', 'chip');
      a.href = '#cluster-' + c;
      chip.style.setProperty('--c', colour(c));
      a.append(chip, c + ' (' + n + ')');
      box.append(a, ' ');
    });
    if (D.normal.length) { var a = el('a', null, 'normal (' + D.normal.length + ')'); a.href = '#normal'; box.append(a); }
  }
  function edited(e) {
    try { return localStorage.getItem('anoclust-review:' + e.key) !== null; } catch (err) { return false; }
  }
  function control() {  // the list, the - and + buttons and the curve follow the shown k
    D.ks.forEach(function (k, j) {
      var o = select.options[j];
      o.textContent = k + (k === D.chosen ? ' \u00b7 ' + D.mark : '') + (edited(byK[k]) ? ' \u00b7 edited' : '');
    });
    select.value = String(shown);
    var at = D.ks.indexOf(shown);
    minus.disabled = at <= 0;
    plus.disabled = at >= D.ks.length - 1;
    if (curve) all('.kpt', curve).forEach(function (g) { g.classList.toggle('on', +g.getAttribute('data-k') === shown); });
  }
  function remember(k) {  // the address keeps the shown k (a reload shows it again)
    var url = new URL(location.href);
    if (k === D.base) url.searchParams.delete('k'); else url.searchParams.set('k', k);
    try { history.replaceState(history.state, '', url.href); }
    catch (err) { try { sessionStorage.setItem('anoclust-k:' + D.by[0].key, String(k)); } catch (e2) { /* kept nowhere */ } }
  }
  function say(text) { var s = $('review-status'); if (s) { s.textContent = text; s.title = text; } }
  function show(k) {
    var e = byK[k];
    if (!e) return false;
    var before = shown, review = window.anoclustReview, lab = labelsAt(e);
    sections(e);
    marks(e, lab);
    facts(e);
    table(e);
    dendrogram(e);
    shown = k;
    if (review) review.init(lab.map(function (c) { return c >= 0 ? c : 'normal'; }), e.key);
    else links(e);
    control();
    var note = 'Showing k = ' + k + (e.sizes.length !== k ? ' (' + plural(e.sizes.length, 'cluster') + ')' : '')
      + (edited(e) ? ', with the edits saved for k = ' + k : '') + '.';
    if (before !== k && byK[before] && edited(byK[before])) note += ' The edits at k = ' + before + ' are kept for k = ' + before + '.';
    say(note);
    return true;
  }
  function go(k) {
    if (k === shown || !byK[k]) { control(); return; }
    show(k);
    remember(k);
  }
  function step(d) { var j = D.ks.indexOf(shown) + d; if (j >= 0 && j < D.ks.length) go(D.ks[j]); }
  select.addEventListener('change', function () { go(+select.value); });
  minus.addEventListener('click', function () { step(-1); });
  plus.addEventListener('click', function () { step(1); });
  if (curve) curve.addEventListener('click', function (ev) {
    var g = ev.target.closest ? ev.target.closest('[data-k]') : null;
    if (g) go(+g.getAttribute('data-k'));
  });
  document.addEventListener('anoclust-review-saved', control);
  window.addEventListener('storage', control);

  // The k to open at: ?k=N in the address, else the one this tab showed last (when the address
  // could not keep it), else the page's own.
  var asked = new URLSearchParams(location.search).get('k'), want = D.base;
  if (asked === null) { try { asked = sessionStorage.getItem('anoclust-k:' + D.by[0].key); } catch (err) { asked = null; } }
  if (asked !== null && /^[0-9]+$/.test(asked.trim()) && byK[+asked]) want = +asked;
  box.hidden = false;
  if (want !== D.base) show(want);
  else control();
  if (asked !== null && want !== +asked) say('This run holds k = ' + D.ks[0] + '..' + D.ks[D.ks.length - 1]
    + ', not k = ' + asked + ': showing k = ' + want + '.');
  window.anoclustK = {show: go, shown: function () { return shown; }};
  var bar = document.querySelector('nav.toolbar');
  if (bar) document.documentElement.style.setProperty('--bar', bar.offsetHeight + 'px');
})();
"""

# Small DOM helpers the review and the k control share.
_DOM_JS = r"""
var DOM = (function(){
  'use strict';
  function $(id) { return document.getElementById(id); }
  function all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
  return {$: $, all: all, el: el, plural: plural};
})();
"""

JS = _BASE_JS + _DOM_JS + REVIEW_JS + K_JS
