// bench/njs/translate.js: the legacy User API update translated by nginx + njs, the peer a team
// would build instead of the gateway (issue #26). Loaded by bench/njs/nginx.conf.template.
//
//   PUT /User/{id} {"Password":"…"}  →  PATCH /v4/Users/{id}/Password {"password":"…"}
//
// The body's keys are camelCased at every depth; its fields choose the v4 calls as
// mappings/user-api.toml does (profile → PUT /v4/Users/{id}/, Email → PATCH …/Email,
// Password → PATCH …/Password; matched case-insensitively, carried out in that order, stopping
// at the first failure). Each call is a subrequest to the internal `location /v4/`, which
// proxy_passes to the keep-alive upstream with the five legacy headers (allow-list in the
// nginx config). The answer is the legacy envelope; a failed v4 call answers its status with
// Code = status and Updated false. No error-type table, metrics, audit or secret masking:
// what a small team writes first, not the gateway's feature set.

var HEADERS = ['Authorization', 'X-SourceSystem', 'X-ClientCode', 'X-PaperCode', 'X-ClientGroupCode'];

// Lower-cased camelCase name → [part, JSON type]; "?" also allows null.
var FIELDS = {
    firstname: ['profile', 'string?'],
    lastname: ['profile', 'string?'],
    metadata: ['profile', 'object?'],
    ignoreprovider: ['profile', 'boolean'],
    verified: ['profile', 'boolean'],
    lastlogoutdate: ['profile', 'string?'],
    removelastlogoutdate: ['profile', 'boolean'],
    email: ['email', 'string'],
    password: ['password', 'string'],
};
var ORDER = ['profile', 'email', 'password'];
var LABEL = { profile: 'Profile', email: 'Email', password: 'Password' };

// Keys that are one PascalCase/camelCase run (no separators, no two capitals in a row):
// "Password" → "password". Everything else goes through the word split below.
var SIMPLE = /^[A-Za-z][a-z0-9]*(?:[A-Z][a-z0-9]+)*$/;
var WORDS = /[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|[0-9]+/g;

// lowerCamelCase like heck's: "FirstName" → "firstName", "first_name" → "firstName",
// "CustomerID" → "customerId", "XMLHttp" → "xmlHttp".
function camelKey(k) {
    if (SIMPLE.test(k)) {
        return k.charAt(0).toLowerCase() + k.slice(1);
    }
    if (/[^\x00-\x7f]/.test(k)) {
        return k.charAt(0).toLowerCase() + k.slice(1);
    }
    var words = k.match(WORDS);
    if (!words) {
        return k;
    }
    var out = words[0].toLowerCase();
    for (var i = 1; i < words.length; i++) {
        var w = words[i];
        out += w.charAt(0).toUpperCase() + w.slice(1).toLowerCase();
    }
    return out;
}

// Keys camelCased at every depth; two keys of one object that become the same are refused.
function camelDeep(v, depth) {
    if (depth > 128) {
        throw new Error('nesting deeper than 128 levels');
    }
    if (Array.isArray(v)) {
        var a = new Array(v.length);
        for (var i = 0; i < v.length; i++) {
            a[i] = camelDeep(v[i], depth + 1);
        }
        return a;
    }
    if (v !== null && typeof v === 'object') {
        var o = {};
        var keys = Object.keys(v);
        for (var j = 0; j < keys.length; j++) {
            var k = camelKey(keys[j]);
            if (Object.prototype.hasOwnProperty.call(o, k)) {
                var first = keys.filter(function (x) { return camelKey(x) === k; })[0];
                throw new Error('keys ' + JSON.stringify(first) + ' and ' + JSON.stringify(keys[j]) + ' both become ' + JSON.stringify(k));
            }
            o[k] = camelDeep(v[keys[j]], depth + 1);
        }
        return o;
    }
    return v;
}

function typeOk(v, ty) {
    if (v === null) {
        return ty.charAt(ty.length - 1) === '?';
    }
    var t = ty.charAt(ty.length - 1) === '?' ? ty.slice(0, -1) : ty;
    if (t === 'object') {
        return typeof v === 'object' && !Array.isArray(v);
    }
    return typeof v === t;
}

function envelope(r, status, id, errors, updated, extra) {
    var result = { CustomerRegistrationId: id, Updated: updated };
    if (extra) {
        result.Applied = extra.applied;
        result.NotAttempted = extra.notAttempted;
    }
    r.headersOut['Content-Type'] = 'application/json; charset=utf-8';
    r.return(status, JSON.stringify({
        Code: status === 200 ? 0 : status,
        Errors: errors,
        Result: result,
        SessionId: null,
        RequestId: r.variables.request_id,
    }));
}

function refuse(r, id, message) {
    envelope(r, 400, id, [{ Message: message, Code: 'BadRequest', ErrorSource: 'Gateway' }], false);
}

// PUT /User/{id}
async function user(r) {
    // r.uri is already percent-decoded; nginx escapes the subrequest's path again.
    var id = r.uri.slice(r.uri.lastIndexOf('/') + 1);
    if (id.indexOf('?') !== -1) {
        return refuse(r, id, 'the id must not contain "?"');
    }
    for (var h = 0; h < HEADERS.length; h++) {
        if (r.headersIn[HEADERS[h]] === undefined) {
            return refuse(r, id, 'header ' + HEADERS[h] + ' is required');
        }
    }
    var body;
    try {
        body = JSON.parse(r.requestText);
    } catch (e) {
        return refuse(r, id, 'the body is not valid JSON: ' + e.message);
    }
    try {
        body = camelDeep(body, 0);
    } catch (e) {
        return refuse(r, id, e.message);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return refuse(r, id, 'the body must be a JSON object');
    }

    // Split the fields into the v4 calls they choose.
    var parts = {};
    var keys = Object.keys(body);
    for (var i = 0; i < keys.length; i++) {
        var f = FIELDS[keys[i].toLowerCase()];
        if (f === undefined) {
            return refuse(r, id, 'unknown field ' + keys[i]);
        }
        if (!typeOk(body[keys[i]], f[1])) {
            return refuse(r, id, 'field ' + keys[i] + ' must be ' + f[1]);
        }
        (parts[f[0]] = parts[f[0]] || {})[keys[i]] = body[keys[i]];
    }
    var todo = ORDER.filter(function (p) { return parts[p] !== undefined; });
    if (todo.length === 0) {
        return refuse(r, id, 'nothing to update');
    }

    var base = '/v4/Users/' + id;
    var applied = [];
    for (var n = 0; n < todo.length; n++) {
        var p = todo[n];
        var call = p === 'profile'
            ? { uri: base + '/', method: 'PUT' }
            : { uri: base + (p === 'email' ? '/Email' : '/Password'), method: 'PATCH' };
        var reply = await r.subrequest(call.uri, { method: call.method, body: JSON.stringify(parts[p]) });
        var ok = reply.status >= 200 && reply.status < 300;
        var v4 = null;
        try {
            v4 = JSON.parse(reply.responseText);
        } catch (e) {
            ok = false;
        }
        if (!ok || !v4 || !v4.message || v4.message.type !== 'Success') {
            var status = reply.status >= 400 ? reply.status : 502;
            var msg = v4 && v4.message ? v4.message : {};
            var err = { Message: msg.text || 'v4 answered ' + reply.status, Code: msg.code || String(status), ErrorSource: 'UsersOrchestrator' };
            var extra = null;
            if (todo.length > 1) {
                err.Part = LABEL[p];
                extra = { applied: applied, notAttempted: todo.slice(n + 1).map(function (q) { return LABEL[q]; }) };
            }
            return envelope(r, status, id, [err], false, extra);
        }
        applied.push(LABEL[p]);
    }
    envelope(r, 200, id, [], true, todo.length > 1 ? { applied: applied, notAttempted: [] } : null);
}

export default { user, camelKey, camelDeep };
