/* The action catalog as Enroll carries it: see actions_info.h. */
#include "actions_info.h"

#include <errno.h>
#include <stdlib.h>

const char *actions_info_mode(const struct action *a)
{
    return a->destructive ? "destructive" : a->auto_run ? "auto" : "approve";
}

static void evidence_free(Vigil__ActionInfo *info)
{
    for (size_t k = 0; k < info->n_evidence; k++) {
        Vigil__ActionEvidence *e = info->evidence[k];
        if (!e)
            continue;
        for (size_t j = 0; j < e->n_args; j++)
            free(e->args[j]);
        free(e->args);
        free(e);
    }
    free(info->evidence);
    info->evidence = NULL;
    info->n_evidence = 0;
}

/* The action's evidence entries into info (strings borrowed). 0 or -ENOMEM. */
static int evidence_build(const struct action *a, Vigil__ActionInfo *info)
{
    if (a->nevidence == 0)
        return 0;
    info->evidence = calloc(a->nevidence, sizeof(Vigil__ActionEvidence *));
    if (!info->evidence)
        return -ENOMEM;
    info->n_evidence = a->nevidence;
    for (size_t k = 0; k < a->nevidence; k++) {
        const struct action_evidence *src = &a->evidence[k];
        Vigil__ActionEvidence *e = calloc(1, sizeof(*e));
        if (!e)
            return -ENOMEM;
        vigil__action_evidence__init(e);
        info->evidence[k] = e;
        e->kind = src->kind;
        if (src->nargs == 0)
            continue;
        e->args = calloc(src->nargs, sizeof(Vigil__Label *));
        if (!e->args)
            return -ENOMEM;
        for (size_t j = 0; j < src->nargs; j++) {
            Vigil__Label *l = calloc(1, sizeof(*l));
            if (!l)
                return -ENOMEM;
            vigil__label__init(l);
            l->key = src->keys[j];
            l->value = src->values[j];
            e->args[e->n_args++] = l;
        }
    }
    return 0;
}

int actions_info_build(const actions_t *catalog, Vigil__ActionInfo ***ret, size_t *ret_count)
{
    size_t n = catalog ? actions_count(catalog) : 0;
    Vigil__ActionInfo **infos = NULL;

    if (n == 0) {
        *ret = NULL;
        *ret_count = 0;
        return 0;
    }
    infos = calloc(n, sizeof(Vigil__ActionInfo *));
    if (!infos)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct action *a = actions_get(catalog, i);
        Vigil__ActionInfo *info = calloc(1, sizeof(*info));
        char **params = a->nparams ? calloc(a->nparams, sizeof(char *)) : NULL;
        if (!info || (a->nparams && !params)) {
            free(info);
            free(params);
            actions_info_free(&infos, n);
            return -ENOMEM;
        }
        vigil__action_info__init(info);
        info->name = a->name;
        info->kind = (char *)actions_kind_name(a->kind);
        info->mode = (char *)actions_info_mode(a);
        for (size_t k = 0; k < a->nparams; k++)
            params[k] = a->params[k].name;
        info->n_params = a->nparams;
        info->params = params;
        info->root = a->root;
        if (a->inverse)
            info->inverse = a->inverse->name;
        infos[i] = info;
        if (evidence_build(a, info) < 0) {
            actions_info_free(&infos, n);
            return -ENOMEM;
        }
    }
    *ret = infos;
    *ret_count = n;
    return 0;
}

void actions_info_free(Vigil__ActionInfo ***infos_p, size_t count)
{
    if (!infos_p || !*infos_p)
        return;
    Vigil__ActionInfo **infos = *infos_p;
    for (size_t i = 0; i < count; i++) {
        if (!infos[i])
            continue;
        evidence_free(infos[i]);
        free(infos[i]->params);
        free(infos[i]);
    }
    free(infos);
    *infos_p = NULL;
}
