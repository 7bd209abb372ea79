/*
 * Optional C kernel of the lwmecps simulator's scaling window (lwmecps-v3's hot loop).
 *
 * A line-by-line translation of the pure-Python reference in cluster.py:
 *   scale_list(sim, replicas)            == SimBackend.scale_list (Python)
 *   window_scaling(sim, lam, rtt_own, t) == SimBackend._window_scaling (Python)
 * operating on the backend's own Python lists (ready, pending, backlog, desired,
 * last_latency_ms, last_load) in place, so the two kernels are interchangeable at any
 * step. Every floating-point expression keeps the reference's operand order, exp() is the
 * same libm function Python's math.exp calls, and the build disables FMA contraction, so
 * trajectories are bit-identical (tests/lwmecps/test_ckernel.py checks this). Rare paths
 * (several readiness events in one window, the spread layout's RTT, building a violation
 * table row) call back into the Python methods.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define SMALL_N 64

static PyObject *s_desired, *s_ready, *s_pending, *s_backlog, *s_dep_fit, *s_delays, *s_di, *s_now,
    *s_tau, *s_mu, *s_hot, *s_failover_order, *s_site_rtt, *s_last_latency_ms, *s_last_load,
    *s_last_demand, *s_last_failed_rps, *s_last_served_rps, *s_last_mean_latency_ms, *s_last_sla,
    *s_rows;

/* ------------------------------------------------------------------ helpers */

static inline int as_double(PyObject *o, double *out) {
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

static inline int as_long(PyObject *o, long *out) {
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

static int attr_double(PyObject *obj, PyObject *name, double *out) {
    PyObject *o = PyObject_GetAttr(obj, name);
    if (o == NULL) return -1;
    int r = as_double(o, out);
    Py_DECREF(o);
    return r;
}

/* new reference to a list attribute, or NULL with TypeError */
static PyObject *attr_list(PyObject *obj, PyObject *name) {
    PyObject *o = PyObject_GetAttr(obj, name);
    if (o == NULL) return NULL;
    if (!PyList_Check(o)) {
        PyErr_Format(PyExc_TypeError, "SimBackend.%U must be a list, got %s", name, Py_TYPE(o)->tp_name);
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

static int set_attr_double(PyObject *obj, PyObject *name, double v) {
    PyObject *f = PyFloat_FromDouble(v);
    if (f == NULL) return -1;
    int r = PyObject_SetAttr(obj, name, f);
    Py_DECREF(f);
    return r;
}

/* list[i] = float(v) (steals nothing; i in range) */
static inline int list_set_double(PyObject *lst, Py_ssize_t i, double v) {
    PyObject *f = PyFloat_FromDouble(v);
    if (f == NULL) return -1;
    PyList_SetItem(lst, i, f); /* steals f, releases the old item */
    return 0;
}

static inline int list_set_long(PyObject *lst, Py_ssize_t i, long v) {
    PyObject *o = PyLong_FromLong(v);
    if (o == NULL) return -1;
    PyList_SetItem(lst, i, o);
    return 0;
}

/* Python indexing semantics of a list (negative indices wrap, IndexError outside) */
static inline PyObject *list_at(PyObject *lst, Py_ssize_t i) {
    if (!PyList_Check(lst)) {
        PyErr_SetString(PyExc_TypeError, "simulator table rows must be lists");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(lst);
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    return PyList_GET_ITEM(lst, i); /* borrowed */
}

/* rows[c][i] as a double */
static inline int table(PyObject *rows, long c, long i, double *out) {
    PyObject *row = list_at(rows, c);
    if (row == NULL) return -1;
    PyObject *v = list_at(row, i);
    if (v == NULL) return -1;
    return as_double(v, out);
}

/* violation rows for an integer slack (ms): cache lookup, else vt.rows(si) (borrowed from cache or new) */
static PyObject *violation_rows(PyObject *vcache, PyObject *vt, long si) {
    PyObject *key = PyLong_FromLong(si);
    if (key == NULL) return NULL;
    PyObject *vr = PyDict_GetItemWithError(vcache, key);
    if (vr != NULL) {
        Py_DECREF(key);
        Py_INCREF(vr);
        return vr;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    vr = PyObject_CallMethodOneArg(vt, s_rows, key);
    Py_DECREF(key);
    return vr;
}

static double fluid_violation(double w0, double w1, double s, double mu) {
    double lo, hi;
    if (w0 <= w1) {
        lo = w0;
        hi = w1;
    } else {
        lo = w1;
        hi = w0;
    }
    if (s <= lo) return 1.0;
    if (hi - lo < 1e-12) return exp(-mu * (s - lo));
    double top = hi < s ? hi : s;
    double part = (exp(-mu * (s - top)) - exp(-mu * (s - lo))) / mu + (hi > s ? hi - s : 0.0);
    return part / (hi - lo);
}

/* ------------------------------------------------------------------ scale_list */

PyDoc_STRVAR(scale_list_doc,
             "scale_list(sim, replicas)\n--\n\n"
             "C version of SimBackend.scale_list (same semantics, mutates sim's lists in place).");

static PyObject *ck_scale_list(PyObject *Py_UNUSED(mod), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "scale_list(sim, replicas) takes 2 arguments");
        return NULL;
    }
    PyObject *sim = args[0], *replicas = args[1];
    PyObject *desired = NULL, *ready = NULL, *pending = NULL, *dep_fit = NULL, *delays = NULL;
    PyObject *ret = NULL;
    desired = attr_list(sim, s_desired);
    if (desired == NULL) goto done;
    int eq = PyObject_RichCompareBool(replicas, desired, Py_EQ);
    if (eq < 0) goto done;
    if (eq) {
        ret = Py_None;
        Py_INCREF(ret);
        goto done;
    }
    if (!PyList_Check(replicas)) {
        PyErr_Format(PyExc_TypeError, "replicas must be a list of ints, got %s", Py_TYPE(replicas)->tp_name);
        goto done;
    }
    Py_ssize_t n = PyList_GET_SIZE(desired);
    if (PyList_GET_SIZE(replicas) != n) {
        PyErr_Format(PyExc_ValueError, "expected %zd replica counts (one per deployment), got %zd", n,
                     PyList_GET_SIZE(replicas));
        goto done;
    }
    if ((ready = attr_list(sim, s_ready)) == NULL) goto done;
    if ((pending = attr_list(sim, s_pending)) == NULL) goto done;
    if ((dep_fit = attr_list(sim, s_dep_fit)) == NULL) goto done;
    if ((delays = attr_list(sim, s_delays)) == NULL) goto done;
    if (PyList_GET_SIZE(dep_fit) != n || PyList_GET_SIZE(ready) != n || PyList_GET_SIZE(pending) != n) {
        PyErr_SetString(PyExc_ValueError, "scale_list: desired, ready, pending and dep_fit differ in length");
        goto done;
    }
    long di;
    double now;
    {
        PyObject *o = PyObject_GetAttr(sim, s_di);
        if (o == NULL) goto done;
        int r = as_long(o, &di);
        Py_DECREF(o);
        if (r < 0) goto done;
    }
    if (attr_double(sim, s_now, &now) < 0) goto done;
    Py_ssize_t nd = PyList_GET_SIZE(delays);
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *ro = PyList_GET_ITEM(replicas, d);
        long r, cur, fit;
        if (as_long(ro, &r) < 0) goto done;
        if (as_long(PyList_GET_ITEM(desired, d), &cur) < 0) goto done;
        if (as_long(PyList_GET_ITEM(dep_fit, d), &fit) < 0) goto done;
        if (r == cur) continue;
        Py_INCREF(ro);
        PyList_SetItem(desired, d, ro);
        long target = r < fit ? r : fit;
        long have = cur < fit ? cur : fit;
        if (target > have) {
            double delay;
            PyObject *pd = PyList_GET_ITEM(pending, d);
            if (!PyList_Check(pd) || di < 0 || di >= nd) {
                PyErr_SetString(PyExc_ValueError, "scale_list: corrupt pending list or delay cursor");
                goto done;
            }
            if (as_double(PyList_GET_ITEM(delays, di), &delay) < 0) goto done;
            PyObject *g = Py_BuildValue("[dl]", now + delay, target - have);
            if (g == NULL) goto done;
            int r2 = PyList_Append(pd, g);
            Py_DECREF(g);
            if (r2 < 0) goto done;
            di = (di + 1) & 255;
        } else if (target < have) {
            long remove = have - target;
            PyObject *pend = PyList_GET_ITEM(pending, d);
            if (!PyList_Check(pend)) {
                PyErr_SetString(PyExc_TypeError, "scale_list: pending groups must be lists");
                goto done;
            }
            while (remove > 0 && PyList_GET_SIZE(pend) > 0) { /* Pending pods go first (newest first) */
                Py_ssize_t last = PyList_GET_SIZE(pend) - 1;
                PyObject *g = PyList_GET_ITEM(pend, last);
                long gc;
                if (!PyList_Check(g) || PyList_GET_SIZE(g) != 2) {
                    PyErr_SetString(PyExc_TypeError, "scale_list: a pending group must be [ready_time_s, count]");
                    goto done;
                }
                if (as_long(PyList_GET_ITEM(g, 1), &gc) < 0) goto done;
                long k = remove < gc ? remove : gc;
                gc -= k;
                if (list_set_long(g, 1, gc) < 0) goto done;
                remove -= k;
                if (gc == 0 && PyList_SetSlice(pend, last, last + 1, NULL) < 0) goto done;
            }
            long rd;
            if (as_long(PyList_GET_ITEM(ready, d), &rd) < 0) goto done;
            if (list_set_long(ready, d, rd - remove) < 0) goto done;
        }
    }
    {
        PyObject *o = PyLong_FromLong(di);
        if (o == NULL) goto done;
        int r = PyObject_SetAttr(sim, s_di, o);
        Py_DECREF(o);
        if (r < 0) goto done;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    Py_XDECREF(desired);
    Py_XDECREF(ready);
    Py_XDECREF(pending);
    Py_XDECREF(dep_fit);
    Py_XDECREF(delays);
    return ret;
}

/* ------------------------------------------------------------------ window_scaling */

PyDoc_STRVAR(window_scaling_doc,
             "window_scaling(sim, lam_row, rtt_own, t)\n--\n\n"
             "C version of SimBackend._window_scaling (same semantics, mutates sim's lists in place).");

typedef struct {
    long d, e;
    double r;
} fo_t;

static PyObject *ck_window_scaling(PyObject *Py_UNUSED(mod), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "window_scaling(sim, lam_row, rtt_own, t) takes 4 arguments");
        return NULL;
    }
    PyObject *sim = args[0], *lam_row = args[1], *rtt_own = args[2], *t_obj = args[3];
    PyObject *ready = NULL, *pending = NULL, *backlog = NULL, *hot = NULL, *fo_order = NULL, *site_rtt = NULL;
    PyObject *lat_out = NULL, *load_out = NULL, *vr = NULL;
    PyObject *ret = NULL;
    double in_rate_s[SMALL_N], in_rtt_s[SMALL_N];
    fo_t fo_s[SMALL_N];
    double *in_rate = in_rate_s, *in_rtt = in_rtt_s;
    fo_t *fo = fo_s;
    Py_ssize_t n_fo = 0;
    int have_fo = 0;

    if (!PyList_Check(lam_row) || !PyList_Check(rtt_own)) {
        PyErr_SetString(PyExc_TypeError, "window_scaling: lam_row and rtt_own must be lists of floats");
        return NULL;
    }
    double tau, mu, now;
    if (attr_double(sim, s_tau, &tau) < 0 || attr_double(sim, s_mu, &mu) < 0 || attr_double(sim, s_now, &now) < 0)
        return NULL;
    double end = now + tau;
    if ((ready = attr_list(sim, s_ready)) == NULL) goto done;
    if ((pending = attr_list(sim, s_pending)) == NULL) goto done;
    if ((backlog = attr_list(sim, s_backlog)) == NULL) goto done;
    if ((lat_out = attr_list(sim, s_last_latency_ms)) == NULL) goto done;
    if ((load_out = attr_list(sim, s_last_load)) == NULL) goto done;
    Py_ssize_t n = PyList_GET_SIZE(ready);
    if (PyList_GET_SIZE(lam_row) != n || PyList_GET_SIZE(pending) != n || PyList_GET_SIZE(backlog) != n ||
        PyList_GET_SIZE(rtt_own) != n || PyList_GET_SIZE(lat_out) != n || PyList_GET_SIZE(load_out) != n) {
        PyErr_SetString(PyExc_ValueError, "window_scaling: per-deployment lists differ in length");
        goto done;
    }
    if (n > SMALL_N) {
        in_rate = PyMem_Malloc(sizeof(double) * (size_t)n);
        in_rtt = PyMem_Malloc(sizeof(double) * (size_t)n);
        fo = PyMem_Malloc(sizeof(fo_t) * (size_t)n);
        if (in_rate == NULL || in_rtt == NULL || fo == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    double failed = 0.0;

    /* failover pre-pass over the deployments without a ready pod */
    for (Py_ssize_t d = 0; d < n; d++) {
        long rd;
        if (as_long(PyList_GET_ITEM(ready, d), &rd) < 0) goto done;
        if (rd != 0) continue;
        double lam;
        if (as_double(PyList_GET_ITEM(lam_row, d), &lam) < 0) goto done;
        if (lam <= 0.0) continue;
        PyObject *pend = PyList_GET_ITEM(pending, d);
        if (!PyList_Check(pend)) {
            PyErr_SetString(PyExc_TypeError, "window_scaling: pending groups must be lists");
            goto done;
        }
        double first = INFINITY;
        if (PyList_GET_SIZE(pend) > 0) {
            PyObject *g = list_at(PyList_GET_ITEM(pend, 0), 0);
            if (g == NULL || as_double(g, &first) < 0) goto done;
        }
        double f = first >= end ? 1.0 : (first - now) / tau;
        if (f <= 0.0) continue;
        double moved = lam * f;
        if (!have_fo) {
            have_fo = 1;
            for (Py_ssize_t i = 0; i < n; i++) in_rate[i] = in_rtt[i] = 0.0;
            if (fo_order == NULL) {
                if ((fo_order = attr_list(sim, s_failover_order)) == NULL) goto done;
                if ((site_rtt = attr_list(sim, s_site_rtt)) == NULL) goto done;
            }
        }
        PyObject *order = list_at(fo_order, d);
        if (order == NULL) goto done;
        if (!PyList_Check(order)) {
            PyErr_SetString(PyExc_TypeError, "window_scaling: failover_order rows must be lists");
            goto done;
        }
        int found = 0;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(order); k++) {
            long e, re;
            if (as_long(PyList_GET_ITEM(order, k), &e) < 0) goto done;
            PyObject *reo = list_at(ready, e);
            if (reo == NULL || as_long(reo, &re) < 0) goto done;
            if (re > 0) {
                double r;
                PyObject *srow = list_at(site_rtt, d);
                if (srow == NULL) goto done;
                PyObject *ro = list_at(srow, e);
                if (ro == NULL || as_double(ro, &r) < 0) goto done;
                if (e < 0) e += n;
                in_rate[e] += moved;
                in_rtt[e] += moved * r;
                fo[n_fo].d = (long)d;
                fo[n_fo].e = e;
                fo[n_fo].r = r;
                n_fo++;
                found = 1;
                break;
            }
        }
        if (!found) {
            failed += moved;
            fo[n_fo].d = (long)d;
            fo[n_fo].e = -1;
            fo[n_fo].r = 0.0;
            n_fo++;
        }
    }

    /* hot-loop constants: (crows, grid, vt, vcache, vgrid, sla_ms, timeout, inv_mu, pinned) */
    hot = PyObject_GetAttr(sim, s_hot);
    if (hot == NULL) goto done;
    if (!PyTuple_Check(hot) || PyTuple_GET_SIZE(hot) != 9) {
        PyErr_SetString(PyExc_TypeError, "window_scaling: SimBackend._hot must be a 9-tuple");
        goto done;
    }
    PyObject *crows = PyTuple_GET_ITEM(hot, 0), *vt = PyTuple_GET_ITEM(hot, 2), *vcache = PyTuple_GET_ITEM(hot, 3);
    long grid, vgrid;
    double sla_ms, timeout, inv_mu;
    if (as_long(PyTuple_GET_ITEM(hot, 1), &grid) < 0 || as_long(PyTuple_GET_ITEM(hot, 4), &vgrid) < 0 ||
        as_double(PyTuple_GET_ITEM(hot, 5), &sla_ms) < 0 || as_double(PyTuple_GET_ITEM(hot, 6), &timeout) < 0 ||
        as_double(PyTuple_GET_ITEM(hot, 7), &inv_mu) < 0)
        goto done;
    if (!PyDict_Check(vcache)) {
        PyErr_SetString(PyExc_TypeError, "window_scaling: the violation cache must be a dict");
        goto done;
    }
    int pinned = PyObject_IsTrue(PyTuple_GET_ITEM(hot, 8));
    if (pinned < 0) goto done;

    double L = 0.0, V = 0.0, N = 0.0, drop_total = 0.0;
    for (Py_ssize_t d = 0; d < n; d++) {
        double lam, B, rtt;
        long c;
        if (as_double(PyList_GET_ITEM(lam_row, d), &lam) < 0) goto done;
        if (as_long(PyList_GET_ITEM(ready, d), &c) < 0) goto done;
        PyObject *pend = PyList_GET_ITEM(pending, d);
        Py_INCREF(pend); /* the zip in the reference holds the list even if pending[d] is rebound */
        if (as_double(PyList_GET_ITEM(backlog, d), &B) < 0 || as_double(PyList_GET_ITEM(rtt_own, d), &rtt) < 0) {
            Py_DECREF(pend);
            goto done;
        }
        if (!PyList_Check(pend)) {
            Py_DECREF(pend);
            PyErr_SetString(PyExc_TypeError, "window_scaling: pending groups must be lists");
            goto done;
        }
        if (!pinned) {
            PyObject *r = PyObject_CallMethod(sim, "_spread_rtt", "Ol", t_obj, c);
            if (r == NULL || as_double(r, &rtt) < 0) {
                Py_XDECREF(r);
                Py_DECREF(pend);
                goto done;
            }
            Py_DECREF(r);
        }
        double lam_t = lam;
        if (have_fo) {
            double m = in_rate[d];
            if (m > 0.0) {
                lam_t = lam + m;
                rtt = (lam * rtt + in_rtt[d]) / lam_t;
            }
        }
        double f = 1.0; /* fraction of the window before the pending pods are ready */
        long c1 = c;
        if (PyList_GET_SIZE(pend) > 0) {
            PyObject *g = PyList_GET_ITEM(pend, 0);
            double g0;
            PyObject *g0o = list_at(g, 0);
            if (g0o == NULL || as_double(g0o, &g0) < 0) {
                Py_DECREF(pend);
                goto done;
            }
            if (g0 < end) {
                if (PyList_GET_SIZE(pend) > 1) {
                    double g10;
                    PyObject *g10o = list_at(PyList_GET_ITEM(pend, 1), 0);
                    if (g10o == NULL || as_double(g10o, &g10) < 0) {
                        Py_DECREF(pend);
                        goto done;
                    }
                    if (g10 < end) {
                        Py_DECREF(pend);
                        PyObject *res = PyObject_CallMethod(sim, "_deployment_window", "nddO", d, lam_t, rtt, Py_None);
                        if (res == NULL) goto done;
                        double r0, r1, r2, r3;
                        if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 4 ||
                            as_double(PyTuple_GET_ITEM(res, 0), &r0) < 0 ||
                            as_double(PyTuple_GET_ITEM(res, 1), &r1) < 0 ||
                            as_double(PyTuple_GET_ITEM(res, 2), &r2) < 0 ||
                            as_double(PyTuple_GET_ITEM(res, 3), &r3) < 0) {
                            if (!PyErr_Occurred())
                                PyErr_SetString(PyExc_TypeError, "_deployment_window must return 4 floats");
                            Py_DECREF(res);
                            goto done;
                        }
                        Py_DECREF(res);
                        L += r0;
                        V += r1;
                        N += r2;
                        drop_total += r3;
                        long rd;
                        if (as_long(PyList_GET_ITEM(ready, d), &rd) < 0) goto done;
                        if (list_set_double(load_out, d, rd > 0 ? lam / ((double)rd * mu) : (lam > 0.0 ? 4.0 : 0.0)) < 0)
                            goto done;
                        continue;
                    }
                }
                f = (g0 - now) / tau;
                if (f < 0.0) f = 0.0;
                long gc;
                PyObject *gco = list_at(g, 1);
                if (gco == NULL || as_long(gco, &gc) < 0) {
                    Py_DECREF(pend);
                    goto done;
                }
                c1 = c + gc;
                if (list_set_long(ready, d, c1) < 0 || PyList_SetSlice(pend, 0, 1, NULL) < 0) {
                    Py_DECREF(pend);
                    goto done;
                }
            }
        }
        Py_DECREF(pend);
        if (c1 <= 0) {
            if (list_set_double(lat_out, d, rtt + 1000.0 * inv_mu) < 0) goto done;
            if (list_set_double(load_out, d, lam > 0.0 ? 4.0 : 0.0) < 0) goto done;
            continue;
        }
        double rtt_s = rtt * 0.001;
        double cap1 = (double)c1 * mu;
        if (B <= 0.0 && lam_t < cap1 && (c == 0 || lam_t < (double)c * mu)) {
            /* stationary pieces: Erlang C and the response-time tail from tables */
            long si = (long)(sla_ms - rtt + 0.5);
            Py_XDECREF(vr);
            vr = violation_rows(vcache, vt, si);
            if (vr == NULL) goto done;
            double cap = cap1;
            double x = lam_t / cap;
            double cv, vv;
            if (table(crows, c1, (long)(x * (double)grid), &cv) < 0) goto done;
            double w = inv_mu + cv / (cap - lam_t);
            if (table(vr, c1, (long)(x * (double)vgrid), &vv) < 0) goto done;
            double v = vv;
            double nn;
            if (f >= 1.0 || lam_t <= 0.0) { /* one piece, or no requests to weight the pieces by */
                nn = lam_t * tau;
            } else {
                nn = lam_t * (1.0 - f) * tau;
                w *= nn;
                v *= nn;
                if (c > 0) {
                    double n0 = lam_t * f * tau;
                    cap = (double)c * mu;
                    double x0 = lam_t / cap;
                    if (table(crows, c, (long)(x0 * (double)grid), &cv) < 0) goto done;
                    w += n0 * (inv_mu + cv / (cap - lam_t));
                    if (table(vr, c, (long)(x0 * (double)vgrid), &vv) < 0) goto done;
                    v += n0 * vv;
                    nn += n0;
                }
                if (nn == 0.0) { /* unreachable with lam_t > 0; kept for parity with Python's division */
                    PyErr_SetString(PyExc_ZeroDivisionError, "float division by zero");
                    goto done;
                }
                w /= nn;
                v /= nn;
            }
            w += rtt_s;
            L += nn * w;
            V += nn * v;
            N += nn;
            if (list_set_double(lat_out, d, 1000.0 * w) < 0) goto done;
            if (list_set_double(load_out, d, lam / cap1) < 0) goto done;
            continue;
        }
        /* fluid (overload or backlog) pieces */
        double slack = (sla_ms - rtt) * 0.001;
        double wsum_d = 0.0, nacc_d = 0.0;
        int have_vr = 0;
        double durs[2] = {f * tau, (1.0 - f) * tau};
        long ccs[2] = {c, c1};
        for (int p = 0; p < 2; p++) {
            double dur = durs[p];
            long cc = ccs[p];
            if (dur <= 0.0 || cc <= 0) continue;
            double cap = (double)cc * mu;
            if (lam_t <= 0.0) {
                if (B > 0.0) {
                    B -= cap * dur;
                    if (B < 0.0) B = 0.0;
                }
                continue;
            }
            double t_f;
            if (B <= 0.0 && lam_t < cap) {
                t_f = 0.0;
            } else {
                double bmax = cap * timeout;
                double drift = lam_t - cap;
                if (drift >= 0.0) {
                    t_f = dur;
                } else {
                    t_f = B / -drift;
                    if (t_f > dur) t_f = dur;
                }
                double B1 = B + drift * t_f;
                double drop = 0.0;
                if (B1 > bmax) {
                    drop = B1 - bmax;
                    B1 = bmax;
                    drop_total += drop;
                }
                double w0 = (B < bmax ? B : bmax) / cap;
                double w1 = B1 / cap;
                double n_f = lam_t * t_f - drop;
                if (n_f > 0.0) {
                    wsum_d += n_f * (0.5 * (w0 + w1) + inv_mu);
                    V += n_f * fluid_violation(w0, w1, slack, mu);
                    nacc_d += n_f;
                }
                B = B1;
            }
            if (t_f < dur) {
                if (!have_vr) {
                    long si = (long)(sla_ms - rtt + 0.5);
                    Py_XDECREF(vr);
                    vr = violation_rows(vcache, vt, si);
                    if (vr == NULL) goto done;
                    have_vr = 1;
                }
                double x = lam_t / cap;
                double nn = lam_t * (dur - t_f);
                double cv, vv;
                if (table(crows, cc, (long)(x * (double)grid), &cv) < 0) goto done;
                wsum_d += nn * (inv_mu + cv / (cap - lam_t));
                if (table(vr, cc, (long)(x * (double)vgrid), &vv) < 0) goto done;
                V += nn * vv;
                nacc_d += nn;
                B = 0.0;
            }
        }
        if (list_set_double(backlog, d, B) < 0) goto done;
        L += wsum_d + nacc_d * rtt_s;
        N += nacc_d;
        if (list_set_double(lat_out, d, 1000.0 * ((nacc_d > 0.0 ? wsum_d / nacc_d : inv_mu) + rtt_s)) < 0) goto done;
        if (list_set_double(load_out, d, lam / cap1) < 0) goto done;
    }
    /* what the failed-over users saw: the target's latency with their own RTT */
    for (Py_ssize_t i = 0; i < n_fo; i++) {
        double v;
        if (fo[i].e < 0) {
            v = 1000.0 * timeout;
        } else {
            double le, re;
            if (as_double(PyList_GET_ITEM(lat_out, fo[i].e), &le) < 0 ||
                as_double(PyList_GET_ITEM(rtt_own, fo[i].e), &re) < 0)
                goto done;
            v = le + fo[i].r - re;
        }
        if (list_set_double(lat_out, fo[i].d, v) < 0) goto done;
    }
    /* failed requests (no ready pod anywhere, or dropped) count at the timeout and as violations */
    double nf = failed * tau + drop_total;
    double total = N + nf;
    if (PyObject_SetAttr(sim, s_last_demand, lam_row) < 0) goto done;
    if (set_attr_double(sim, s_last_failed_rps, nf / tau) < 0) goto done;
    if (set_attr_double(sim, s_last_served_rps, N / tau) < 0) goto done;
    double mlat = 0.0, sla = 0.0;
    if (total > 0.0) {
        mlat = 1000.0 * (L + nf * timeout) / total;
        sla = (V + nf) / total;
    }
    if (set_attr_double(sim, s_last_mean_latency_ms, mlat) < 0) goto done;
    if (set_attr_double(sim, s_last_sla, sla) < 0) goto done;
    ret = Py_None;
    Py_INCREF(ret);
done:
    if (in_rate != in_rate_s) PyMem_Free(in_rate);
    if (in_rtt != in_rtt_s) PyMem_Free(in_rtt);
    if (fo != fo_s) PyMem_Free(fo);
    Py_XDECREF(ready);
    Py_XDECREF(pending);
    Py_XDECREF(backlog);
    Py_XDECREF(hot);
    Py_XDECREF(fo_order);
    Py_XDECREF(site_rtt);
    Py_XDECREF(lat_out);
    Py_XDECREF(load_out);
    Py_XDECREF(vr);
    return ret;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef ck_methods[] = {
    {"scale_list", (PyCFunction)(void (*)(void))ck_scale_list, METH_FASTCALL, scale_list_doc},
    {"window_scaling", (PyCFunction)(void (*)(void))ck_window_scaling, METH_FASTCALL, window_scaling_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ck_module = {
    PyModuleDef_HEAD_INIT,
    "_ckernel",
    "Optional C kernel of the lwmecps simulator's scaling window (see cluster.py for the reference).",
    -1,
    ck_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

#define INTERN(var, text)                                  \
    do {                                                   \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return NULL;                                   \
    } while (0)

PyMODINIT_FUNC PyInit__ckernel(void) {
    INTERN(s_desired, "desired");
    INTERN(s_ready, "ready");
    INTERN(s_pending, "pending");
    INTERN(s_backlog, "backlog");
    INTERN(s_dep_fit, "dep_fit");
    INTERN(s_delays, "_delays");
    INTERN(s_di, "_di");
    INTERN(s_now, "now");
    INTERN(s_tau, "tau");
    INTERN(s_mu, "mu");
    INTERN(s_hot, "_hot");
    INTERN(s_failover_order, "failover_order");
    INTERN(s_site_rtt, "site_rtt");
    INTERN(s_last_latency_ms, "last_latency_ms");
    INTERN(s_last_load, "last_load");
    INTERN(s_last_demand, "last_demand");
    INTERN(s_last_failed_rps, "last_failed_rps");
    INTERN(s_last_served_rps, "last_served_rps");
    INTERN(s_last_mean_latency_ms, "last_mean_latency_ms");
    INTERN(s_last_sla, "last_sla");
    INTERN(s_rows, "rows");
    return PyModule_Create(&ck_module);
}
