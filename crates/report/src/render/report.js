(function () {
  'use strict';
  function fail(msg) {
    document.title = 'deployclaw report: error: ' + msg;
    var box = document.getElementById('js-error');
    if (box) { box.hidden = false; box.textContent = 'Script error: ' + msg; }
  }
  window.addEventListener('error', function (ev) { fail(String(ev.message)); });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function ms(v) {
    v = Number(v) || 0;
    if (v < 1000) return v + ' ms';
    if (v < 60000) return (Math.ceil(v / 100) / 10).toFixed(1) + ' s';
    var s = Math.ceil(v / 1000);
    return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
  }
  var SEV = { red: 'RED', yellow: 'YELLOW', info: 'INFO' };
  var SEVCLASS = { red: 'red', yellow: 'yellow', info: 'info' };
  var RANK = { red: 2, yellow: 1, info: 0 };

  // The lock-queue risk of a shard (issue 16): the worst `lock-queue-risk` finding; GREEN when
  // the lock read ran and found no session, NONE when it did not run or could not.
  function queueRisk(shard) {
    var worst = -1;
    shard.findings.forEach(function (f) {
      if (f.rule === 'lock-queue-risk' && f.severity !== 'info') worst = Math.max(worst, RANK[f.severity]);
    });
    if (worst === 2) return 'RED';
    if (worst === 1) return 'YELLOW';
    var st = shard.live && shard.live.locks ? shard.live.locks.status : 'not_run';
    return st === 'read' ? 'GREEN' : 'NONE';
  }

  function reasons(shard) {
    return shard.findings
      .filter(function (f) { return f.severity !== 'info'; })
      .sort(function (a, b) { return RANK[b.severity] - RANK[a.severity]; });
  }

  try {
    var data = JSON.parse(document.getElementById('report-data').textContent);
    var shards = data.shards || [];
    var heat = document.getElementById('heatmap');
    var panel = document.getElementById('panel');
    var tip = document.getElementById('tooltip');
    var n = shards.length;
    heat.style.setProperty('--cell', (n <= 60 ? 30 : n <= 200 ? 24 : n <= 600 ? 18 : 13) + 'px');

    // Group by instance, in order of first appearance. A large fleet's page draws only its
    // worst shards: `aggregated` holds every instance's counts and what is not drawn.
    var order = [], byInst = {}, agg = {};
    function addInst(name) {
      if (!Object.prototype.hasOwnProperty.call(byInst, name)) { byInst[name] = []; order.push(name); }
    }
    (data.aggregated ? data.aggregated.instances : []).forEach(function (a) { agg[a.instance] = a; addInst(a.instance); });
    shards.forEach(function (s, i) {
      addInst(s.instance);
      byInst[s.instance].push(i);
    });
    var cells = [];
    order.forEach(function (inst) {
      var idx = byInst[inst];
      var row = el('div', 'inst');
      var head = el('div', 'inst-head');
      head.appendChild(el('span', 'name', inst));
      var c = { GREEN: 0, YELLOW: 0, RED: 0 };
      idx.forEach(function (i) { c[shards[i].gate] = (c[shards[i].gate] || 0) + 1; });
      var a = Object.prototype.hasOwnProperty.call(agg, inst) ? agg[inst] : null;
      if (a) c = { GREEN: a.green, YELLOW: a.yellow, RED: a.red };
      var total = c.GREEN + c.YELLOW + c.RED;
      head.appendChild(el('span', 'muted', total + (total === 1 ? ' shard' : ' shards') +
        ' · ' + c.GREEN + ' green · ' + c.YELLOW + ' yellow · ' + c.RED + ' red'));
      row.appendChild(head);
      var grid = el('div', 'cells');
      idx.forEach(function (i) {
        var s = shards[i];
        var q = queueRisk(s);
        var b = el('button', 'cell g-' + s.gate + ' q-' + q);
        b.setAttribute('data-queue', q);
        b.type = 'button';
        b.setAttribute('data-idx', String(i));
        b.setAttribute('data-gate', s.gate);
        b.setAttribute('aria-label', s.shard + ' ' + s.gate);
        grid.appendChild(b);
        cells.push(b);
      });
      if (a && a.not_drawn) {
        grid.appendChild(el('span', 'agg', '+' + a.not_drawn + ' not drawn (' + a.green +
          ' green; the other shards are listed below)'));
      }
      row.appendChild(grid);
      heat.appendChild(row);
    });

    // Tooltip.
    function showTip(ev, s) {
      tip.textContent = '';
      tip.appendChild(el('div', 't', s.shard + '  ·  ' + s.gate));
      tip.appendChild(el('div', 'r', s.instance + ' · estimated lock ' + ms(s.estimated_lock_ms)));
      var holders = s.live && s.live.lock_holders ? s.live.lock_holders.length : 0;
      if (holders) tip.appendChild(el('div', 'r', 'lock-queue risk ' + queueRisk(s) + ': ' + holders +
        (holders === 1 ? ' session' : ' sessions') + ' the migration would queue behind'));
      var rs = reasons(s);
      if (rs.length) {
        tip.appendChild(el('div', 'r', rs[0].rule + ': ' + rs[0].message));
        if (rs.length > 1) tip.appendChild(el('div', 'r', '+' + (rs.length - 1) + ' more'));
      } else {
        tip.appendChild(el('div', 'r', 'no findings'));
      }
      tip.hidden = false;
      var x = ev.clientX + 14, y = ev.clientY + 14;
      var w = tip.offsetWidth, h = tip.offsetHeight;
      if (x + w > window.innerWidth - 8) x = ev.clientX - w - 14;
      if (y + h > window.innerHeight - 8) y = ev.clientY - h - 14;
      tip.style.left = Math.max(4, x) + 'px';
      tip.style.top = Math.max(4, y) + 'px';
    }
    heat.addEventListener('mousemove', function (ev) {
      var t = ev.target.closest ? ev.target.closest('.cell') : null;
      if (!t) { tip.hidden = true; return; }
      showTip(ev, shards[Number(t.getAttribute('data-idx'))]);
    });
    heat.addEventListener('mouseleave', function () { tip.hidden = true; });

    // Evidence: an object as key/value rows, anything else as JSON.
    function evidence(ev) {
      if (typeof ev !== 'object' || Array.isArray(ev)) return el('pre', null, JSON.stringify(ev, null, 2));
      var box = el('div', 'ev');
      Object.keys(ev).forEach(function (k) {
        var v = ev[k];
        box.appendChild(el('span', null, k.replace(/_/g, ' ')));
        box.appendChild(el('span', null, Array.isArray(v) ? v.map(function (x) { return typeof x === 'string' ? x : JSON.stringify(x); }).join(', ')
          : typeof v === 'string' ? v : JSON.stringify(v)));
      });
      return box;
    }

    // Every live item of a shard, generically: [title, object].
    function liveItems(s) {
      var out = [], live = s.live || {};
      [['locks', 'lock read'], ['traffic', 'traffic read'], ['statements', 'application-query read']].forEach(function (k) {
        var st = live[k[0]];
        if (st && st.status === 'unavailable') out.push([k[1] + ' unavailable', { reason: st.reason }]);
      });
      [['lock_holders', 'lock holder'], ['table_traffic', 'traffic'], ['query_uses', 'application query']].forEach(function (k) {
        (live[k[0]] || []).forEach(function (x) { out.push([k[1], x]); });
      });
      if (live.replica) out.push(['replica', live.replica]);
      return out;
    }

    // Colour by gate (default) or by lock-queue risk.
    var toolbar = document.querySelector('.toolbar');
    var legend = document.querySelector('.heat-left .legend');
    var qLegend = el('div', 'legend qlegend');
    [['GREEN', 'no session in the way'], ['YELLOW', 'sessions the migration would queue behind'],
     ['RED', 'a holder idle in transaction too long'], ['NONE', 'lock read not run or unavailable']].forEach(function (p) {
      var sp = el('span');
      sp.appendChild(el('i', 'sw q-' + p[0]));
      sp.appendChild(document.createTextNode(p[0] + ': ' + p[1]));
      qLegend.appendChild(sp);
    });
    qLegend.hidden = true;
    if (legend) legend.parentNode.insertBefore(qLegend, legend.nextSibling);
    var colourButtons = [];
    function colourBy(mode) {
      heat.classList.toggle('by-queue', mode === 'queue');
      if (legend) legend.hidden = mode === 'queue';
      qLegend.hidden = mode !== 'queue';
      colourButtons.forEach(function (b) { b.classList.toggle('active', b.getAttribute('data-colour') === mode); });
    }
    [['gate', 'Colour: gate'], ['queue', 'Colour: lock-queue risk']].forEach(function (p) {
      var b = el('button', 'filter colour' + (p[0] === 'gate' ? ' active' : ''), p[1]);
      b.type = 'button';
      b.setAttribute('data-colour', p[0]);
      b.addEventListener('click', function () { colourBy(p[0]); });
      colourButtons.push(b);
      if (toolbar) toolbar.appendChild(b);
    });

    // Side panel.
    function rehearsalFor(s) {
      return (data.rehearsals || []).filter(function (r) { return r.schema_fingerprint === s.schema_fingerprint; })[0];
    }
    function showShard(i) {
      var s = shards[i];
      cells.forEach(function (c) { c.classList.toggle('sel', Number(c.getAttribute('data-idx')) === i); });
      panel.textContent = '';
      var h = el('h3', null, s.shard);
      panel.appendChild(h);
      var badge = el('span', 'badge ' + s.gate.toLowerCase(), s.gate);
      panel.appendChild(badge);
      var kv = el('div', 'kv');
      [['instance', s.instance], ['estimated lock', ms(s.estimated_lock_ms)],
       ['schema', (s.schema_fingerprint || '').slice(0, 12) || 'unknown'],
       ['rollback', s.rollback ? s.rollback.outcome.replace('_', ' ') + ', recovery time ' + ms(s.rollback.recovery_time_ms) : 'not proven'],
       ['findings', String(s.findings.length)]].forEach(function (p) {
        kv.appendChild(el('span', null, p[0])); kv.appendChild(el('span', null, p[1]));
      });
      panel.appendChild(kv);
      var fs = s.findings.slice().sort(function (a, b) { return RANK[b.severity] - RANK[a.severity]; });
      if (!fs.length) panel.appendChild(el('p', 'muted', 'No findings on this shard.'));
      fs.forEach(function (f) {
        var box = el('div', 'finding');
        var head = el('div', 'head');
        head.appendChild(el('span', 'badge ' + SEVCLASS[f.severity], SEV[f.severity] || f.severity));
        head.appendChild(el('code', null, f.rule));
        head.appendChild(el('span', 'muted', f.code + (f.location ? ' · line ' + f.location.line : '')));
        box.appendChild(head);
        box.appendChild(el('div', 'msg', f.message));
        if (f.help) box.appendChild(el('div', 'help', f.help));
        if (f.evidence !== undefined && f.evidence !== null) box.appendChild(evidence(f.evidence));
        panel.appendChild(box);
      });
      liveItems(s).forEach(function (it) {
        var box = el('div', 'finding');
        box.appendChild(el('div', 'head', 'Live workload: ' + it[0]));
        box.appendChild(evidence(it[1]));
        panel.appendChild(box);
      });
      var r = rehearsalFor(s);
      if (r) {
        r.statements.forEach(function (st) {
          if (!st.error) return;
          var box = el('div', 'finding');
          box.appendChild(el('div', 'head', 'Rehearsal of this schema shape failed at statement #' + (st.index + 1)));
          box.appendChild(el('div', 'msg', 'ERROR ' + st.error.sqlstate + ': ' + st.error.message));
          panel.appendChild(box);
        });
      }
    }
    heat.addEventListener('click', function (ev) {
      var t = ev.target.closest ? ev.target.closest('.cell') : null;
      if (t) showShard(Number(t.getAttribute('data-idx')));
    });

    // Filters.
    var gateFilter = 'all', text = '';
    function apply() {
      cells.forEach(function (c) {
        var s = shards[Number(c.getAttribute('data-idx'))];
        var okGate = gateFilter === 'all' || s.gate === gateFilter;
        var hay = (s.shard + ' ' + s.instance + ' ' + s.findings.map(function (f) { return f.rule; }).join(' ')).toLowerCase();
        var okText = !text || hay.indexOf(text) !== -1;
        c.classList.toggle('dim', !(okGate && okText));
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll('.filter[data-filter]'), function (b) {
      b.addEventListener('click', function () {
        gateFilter = b.getAttribute('data-filter');
        Array.prototype.forEach.call(document.querySelectorAll('.filter[data-filter]'), function (x) { x.classList.toggle('active', x === b); });
        apply();
      });
    });
    document.getElementById('search').addEventListener('input', function (ev) {
      text = String(ev.target.value || '').trim().toLowerCase();
      apply();
    });

    // Open the worst shard so the panel is useful at first sight.
    if (n) {
      var worst = 0, rank = { GREEN: 0, YELLOW: 1, RED: 2 };
      shards.forEach(function (s, i) {
        var w = shards[worst];
        if (rank[s.gate] > rank[w.gate] || (rank[s.gate] === rank[w.gate] && s.estimated_lock_ms > w.estimated_lock_ms)) worst = i;
      });
      if (shards[worst].gate !== 'GREEN') showShard(worst);
    } else {
      heat.appendChild(el('p', 'muted', 'No shards were validated.'));
    }
    // `#selftest`: exercise click, hover and the filters, and record the outcome on <body>
    // (used by the browser test; harmless otherwise).
    if (window.location.hash === '#selftest') {
      var result = 'ok';
      try {
        var green = heat.querySelector('.cell.g-GREEN'), red = heat.querySelector('.cell.g-RED');
        if (green) {
          green.dispatchEvent(new MouseEvent('click', { bubbles: true }));
          var want = shards[Number(green.getAttribute('data-idx'))].shard;
          if (panel.querySelector('h3').textContent !== want) result = 'click did not open ' + want;
          if (!green.classList.contains('sel')) result = 'clicked cell not selected';
        }
        if (red && result === 'ok') {
          red.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: 50, clientY: 50 }));
          var rs = shards[Number(red.getAttribute('data-idx'))];
          if (tip.hidden || tip.textContent.indexOf(rs.shard) === -1) result = 'no tooltip for ' + rs.shard;
        }
        if (result === 'ok') {
          document.querySelector('.filter[data-filter="RED"]').click();
          var shown = cells.filter(function (c) { return !c.classList.contains('dim'); }).length;
          var reds = shards.filter(function (s) { return s.gate === 'RED'; }).length;
          if (shown !== reds) result = 'red filter shows ' + shown + ' of ' + reds;
          document.querySelector('.filter[data-filter="all"]').click();
          if (cells.some(function (c) { return c.classList.contains('dim'); })) result = 'all filter left cells dimmed';
        }
        if (result === 'ok') {
          document.querySelector('.colour[data-colour="queue"]').click();
          if (!heat.classList.contains('by-queue') || qLegend.hidden) result = 'queue colouring did not switch on';
          var qred = heat.querySelector('.cell.q-RED');
          if (qred && getComputedStyle(qred).backgroundColor === getComputedStyle(heat.querySelector('.cell.q-GREEN, .cell.q-NONE') || qred).backgroundColor &&
              heat.querySelector('.cell.q-GREEN, .cell.q-NONE')) result = 'queue colours are not distinct';
          document.querySelector('.colour[data-colour="gate"]').click();
          if (heat.classList.contains('by-queue')) result = 'gate colouring did not come back';
        }
      } catch (e) {
        result = 'exception: ' + (e && e.message ? e.message : String(e));
      }
      document.body.setAttribute('data-selftest', result);
    }
    heat.setAttribute('data-cells', String(cells.length));
    heat.setAttribute('data-queue-risk', String(cells.filter(function (c) {
      var q = c.getAttribute('data-queue'); return q === 'RED' || q === 'YELLOW';
    }).length));
    document.body.setAttribute('data-scripts', String(document.scripts.length));
    document.body.setAttribute('data-ready', 'true');
    document.title = 'deployclaw report: ready';
  } catch (e) {
    fail(e && e.message ? e.message : String(e));
  }
})();
