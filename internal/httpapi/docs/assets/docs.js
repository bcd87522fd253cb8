// Renders the service's OpenAPI document as HTML. Everything is built with
// DOM calls and textContent: nothing from the document is parsed as HTML.
"use strict";
(function () {
  var METHODS = ["get", "post", "put", "patch", "delete"];

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") e.textContent = attrs[k];
        else if (k === "cls") e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    (kids || []).forEach(function (k) {
      if (k == null) return;
      e.appendChild(typeof k === "string" ? document.createTextNode(k) : k);
    });
    return e;
  }

  // prose renders text with `code` spans, one paragraph per blank line.
  function prose(text, tag) {
    var out = document.createDocumentFragment();
    String(text || "").split(/\n\n+/).forEach(function (para) {
      var p = el(tag || "p");
      para.split("`").forEach(function (part, i) {
        p.appendChild(i % 2 ? el("code", { text: part }) : document.createTextNode(part));
      });
      out.appendChild(p);
    });
    return out;
  }

  function refName(ref) { return ref.split("/").pop(); }
  function anchor(kind, name) { return kind + "-" + name.replace(/[^A-Za-z0-9_-]/g, "_"); }

  function resolve(doc, obj) {
    var seen = 0;
    while (obj && obj.$ref && seen++ < 10) {
      var node = doc;
      obj.$ref.replace(/^#\//, "").split("/").forEach(function (k) { node = node ? node[k] : undefined; });
      obj = node;
    }
    return obj;
  }

  function typeLabel(s) {
    if (s.$ref) return null;
    var t = s.type;
    if (Array.isArray(t)) t = t.join(" | ");
    if (s.const !== undefined) return "const " + JSON.stringify(s.const);
    if (!t) return s.allOf ? "all of" : s.oneOf ? "one of" : s.anyOf ? "any of" : "any";
    if (s.format) t += " (" + s.format + ")";
    return t;
  }

  function constraints(s) {
    var c = [];
    if (s.enum) c.push("one of " + s.enum.map(function (v) { return JSON.stringify(v); }).join(", "));
    ["minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "minProperties", "pattern", "default"].forEach(function (k) {
      if (s[k] !== undefined) c.push(k + " " + JSON.stringify(s[k]));
    });
    if (s.additionalProperties === false) c.push("no other keys");
    return c.join("; ");
  }

  // schema renders a schema as nested HTML; $refs link to the Schemas section.
  function schema(s, depth) {
    depth = depth || 0;
    if (!s) return el("span", { cls: "c", text: "any" });
    if (s.$ref) {
      var n = refName(s.$ref);
      return el("a", { href: "#" + anchor("schema", n), cls: "type", text: n });
    }
    var box = el("div", { cls: "schema" });
    var head = el("div", null, [el("span", { cls: "type", text: typeLabel(s) })]);
    var c = constraints(s);
    if (c) head.appendChild(el("span", { cls: "c", text: "  " + c }));
    box.appendChild(head);
    if (s.description && depth > 0) box.appendChild(el("div", { cls: "c", text: s.description }));
    if (depth > 6) return box;
    ["allOf", "oneOf", "anyOf"].forEach(function (k) {
      if (s[k]) s[k].forEach(function (sub) { box.appendChild(schema(sub, depth + 1)); });
    });
    if (s.items) box.appendChild(el("div", null, ["items: ", schema(s.items, depth + 1)]));
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      box.appendChild(el("div", null, ["each value: ", schema(s.additionalProperties, depth + 1)]));
    }
    if (s.properties) {
      var req = s.required || [];
      var tbody = el("tbody");
      Object.keys(s.properties).forEach(function (name) {
        var p = s.properties[name];
        var desc = p.$ref ? null : p.description;
        tbody.appendChild(el("tr", null, [
          el("td", null, [el("code", { text: name }), req.indexOf(name) >= 0 ? el("span", { cls: "req", text: "required" }) : null]),
          el("td", null, [schema(p.$ref ? p : Object.assign({}, p, { description: undefined }), depth + 1), desc ? el("div", { cls: "c", text: desc }) : null]),
        ]));
      });
      box.appendChild(el("table", null, [el("thead", null, [el("tr", null, [el("th", { text: "key" }), el("th", { text: "value" })])]), tbody]));
    }
    return box;
  }

  function content(doc, c) {
    var frag = document.createDocumentFragment();
    Object.keys(c || {}).forEach(function (mt) {
      frag.appendChild(el("div", { cls: "c", text: mt }));
      frag.appendChild(schema(c[mt].schema, 0));
    });
    return frag;
  }

  function security(doc, op) {
    var sec = op.security !== undefined ? op.security : doc.security || [];
    if (!sec.length) return el("p", { cls: "c", text: "No authentication." });
    var p = el("p", null, ["Authentication (any of): "]);
    sec.forEach(function (req) {
      Object.keys(req).forEach(function (name) {
        var scheme = (doc.components.securitySchemes || {})[name] || {};
        var how = scheme.type === "apiKey" ? scheme.name + " header" : scheme.type === "http" ? "Authorization: " + scheme.scheme + (scheme.bearerFormat ? " (" + scheme.bearerFormat + ")" : "") : scheme.type;
        p.appendChild(el("span", { cls: "sec" }, [el("a", { href: "#security", cls: "type", text: name }), " " + how + " "]));
      });
    });
    return p;
  }

  function operation(doc, path, pathItem, method, op) {
    var id = anchor("op", op.operationId || method + path);
    var box = el("section", { cls: "op", id: id });
    box.appendChild(el("h3", null, [el("span", { cls: "m m-" + method, text: method.toUpperCase() }), el("span", { cls: "path", text: path }), el("span", { cls: "summary", text: op.summary || "" })]));
    box.appendChild(prose(op.description));
    box.appendChild(security(doc, op));
    var params = (pathItem.parameters || []).concat(op.parameters || []).map(function (p) { return resolve(doc, p); });
    if (params.length) {
      box.appendChild(el("h4", { text: "Parameters" }));
      var tb = el("tbody");
      params.forEach(function (p) {
        tb.appendChild(el("tr", null, [el("td", null, [el("code", { text: p.name }), p.required ? el("span", { cls: "req", text: "required" }) : null]),
          el("td", { text: p.in }), el("td", null, [schema(p.schema, 1)]), el("td", { text: p.description || "" })]));
      });
      box.appendChild(el("table", null, [el("thead", null, [el("tr", null, ["name", "in", "schema", "description"].map(function (h) { return el("th", { text: h }); }))]), tb]));
    }
    if (op.requestBody) {
      var rb = resolve(doc, op.requestBody);
      box.appendChild(el("h4", { text: "Request body" + (rb.required ? " (required)" : "") }));
      box.appendChild(content(doc, rb.content));
    }
    box.appendChild(el("h4", { text: "Responses" }));
    var rt = el("tbody");
    Object.keys(op.responses || {}).forEach(function (code) {
      var r = resolve(doc, op.responses[code]) || {};
      var cell = el("td");
      cell.appendChild(prose(r.description, "div"));
      var hs = Object.keys(r.headers || {});
      if (hs.length) cell.appendChild(el("div", { cls: "c", text: "Headers: " + hs.join(", ") }));
      cell.appendChild(content(doc, r.content));
      rt.appendChild(el("tr", null, [el("td", { cls: "st st-" + code.charAt(0), text: code }), cell]));
    });
    box.appendChild(el("table", null, [rt]));
    return box;
  }

  function render(doc) {
    var main = document.getElementById("content");
    var nav = document.getElementById("nav");
    main.textContent = "";
    document.title = doc.info.title;
    document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
    main.appendChild(el("p", { cls: "c", text: "OpenAPI " + doc.openapi }));
    main.appendChild(prose(doc.info.description));

    var byTag = {}, order = (doc.tags || []).map(function (t) { return t.name; });
    Object.keys(doc.paths).forEach(function (path) {
      var item = doc.paths[path];
      METHODS.forEach(function (m) {
        if (!item[m]) return;
        var tag = (item[m].tags || ["Other"])[0];
        if (order.indexOf(tag) < 0) order.push(tag);
        (byTag[tag] = byTag[tag] || []).push([path, item, m, item[m]]);
      });
    });
    order.forEach(function (tag) {
      if (!byTag[tag]) return;
      var t = (doc.tags || []).filter(function (x) { return x.name === tag; })[0];
      main.appendChild(el("h2", { id: anchor("tag", tag), text: tag }));
      if (t && t.description) main.appendChild(prose(t.description));
      nav.appendChild(el("h3", { text: tag }));
      byTag[tag].forEach(function (o) {
        main.appendChild(operation(doc, o[0], o[1], o[2], o[3]));
        nav.appendChild(el("a", { href: "#" + anchor("op", o[3].operationId || o[2] + o[0]), text: o[2].toUpperCase() + " " + o[0] }));
      });
    });

    var comps = doc.components || {};
    main.appendChild(el("h2", { id: "security", text: "Authentication" }));
    nav.appendChild(el("h3", { text: "Reference" }));
    nav.appendChild(el("a", { href: "#security", text: "Authentication" }));
    Object.keys(comps.securitySchemes || {}).forEach(function (name) {
      var s = comps.securitySchemes[name];
      main.appendChild(el("p", null, [el("code", { text: name }), " — " + s.type + (s.scheme ? " " + s.scheme : "") + (s.name ? " header " + s.name : "") + ". ", s.description || ""]));
    });
    main.appendChild(el("h2", { id: "schemas", text: "Schemas" }));
    nav.appendChild(el("a", { href: "#schemas", text: "Schemas" }));
    Object.keys(comps.schemas || {}).forEach(function (name) {
      var s = comps.schemas[name];
      var box = el("section", { cls: "op", id: anchor("schema", name) }, [el("h3", null, [el("span", { cls: "path", text: name })])]);
      if (s.description) box.appendChild(prose(s.description));
      box.appendChild(schema(s, 0));
      main.appendChild(box);
    });
    if (location.hash) {
      var target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  fetch("/api/v1/openapi.json", { headers: { Accept: "application/json" } })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(render)
    .catch(function (e) {
      var s = document.getElementById("status");
      s.className = "err";
      s.textContent = "Could not load the OpenAPI document: " + e.message;
    });
})();
