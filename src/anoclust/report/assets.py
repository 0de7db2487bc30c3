"""The report's inline style sheet and script (no external resources: the file opens offline)."""

CSS = """
:root{--t:128px;--fg:#1d1d1f;--muted:#666;--line:#ddd;--bg:#f6f6f4;--odd:#d0021b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,#overview,.cluster,.normal-set{max-width:1500px;margin:0 auto;padding:12px 24px}
h1{font-size:22px;margin:8px 0 2px}
h2{font-size:18px;margin:0}
h3{font-size:13px;margin:10px 0 6px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.input{color:var(--muted);word-break:break-all;margin:0 0 8px}
.facts{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.fact{background:#fff;border:1px solid var(--line);border-radius:6px;padding:4px 10px}
.fact b{font-size:16px}
.settings{font-size:12px;color:var(--muted);margin:6px 0}
.settings code{background:#fff;border:1px solid var(--line);border-radius:4px;padding:0 4px;margin:0 4px 4px 0;display:inline-block}
.toolbar{position:sticky;top:0;z-index:5;background:rgba(246,246,244,.95);border-bottom:1px solid var(--line);
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
.cluster,.normal-set{border-top:4px solid var(--c,#9a9a9a);margin-top:18px;background:#fff;border-radius:4px}
.cluster h2 .size,.normal-set h2 .size{color:var(--muted);font-weight:400;margin-left:8px}
.note{color:var(--muted);margin:4px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.thumb{margin:0;width:calc(var(--t) + 10px);padding:4px;border:1px solid var(--line);border-radius:5px;background:#fff;scroll-margin-top:60px}
.thumb.odd{border:2px solid var(--odd);padding:3px}
.thumb:target{outline:3px solid #0a66ff;outline-offset:2px}
.frame{position:relative;width:var(--t);height:var(--t);display:flex;align-items:center;justify-content:center;background:#eee}
.frame .pic{display:block;max-width:var(--t);max-height:var(--t)}
.frame .wrap{position:relative;line-height:0}
.heat{display:none;position:absolute;left:0;top:0;width:100%;height:100%;opacity:.75;pointer-events:none}
body.show-heat .heat{display:block}
.thumb figcaption{font-size:11px;line-height:1.25;margin-top:3px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.thumb .lab{color:var(--muted)}
.thumb.odd .lab{color:var(--odd);font-weight:700}
#selfcheck{display:none}
"""

# The self-check runs only when the page is opened with `?selfcheck`: it toggles the heat-map
# switch the way a user would and records what is actually laid out and visible, so a headless
# browser's --dump-dom shows whether the page works (see tests/test_report_browser.py).
JS = """
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
