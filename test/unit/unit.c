#define _GNU_SOURCE /* nftw's FTW_DEPTH, FTW_PHYS */
#include "unit.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int saef_unit_run(const char *name, const CU_TestInfo *tests, CU_InitializeFunc init,
                  CU_CleanupFunc clean, int argc, char **argv)
{
    CU_pSuite suite;
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if ((suite = CU_add_suite(name, init, clean)) == NULL) {
        CU_cleanup_registry();
        return 2;
    }
    for (; tests->pName != NULL; tests++)
        if ((argc < 2 || strstr(tests->pName, argv[1]) != NULL) &&
            CU_add_test(suite, tests->pName, tests->pTestFunc) == NULL) {
            CU_cleanup_registry();
            return 2;
        }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_suites_failed() + CU_get_number_of_failures() +
             CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed != 0;
}

int saef_unit_mkdir(char *template)
{
    if (mkdtemp(template) != NULL)
        return 0;
    perror(template);
    return 1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (remove(path) != 0)
        perror(path);
    return 0;
}

int saef_unit_rmdir(const char *dir)
{
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *scratch;

static int make_scratch(void)
{
    return saef_unit_mkdir(scratch);
}

static int remove_scratch(void)
{
    return saef_unit_rmdir(scratch);
}

int saef_unit_run_in(char *template, const char *name, const CU_TestInfo *tests, int argc,
                     char **argv)
{
    scratch = template;
    return saef_unit_run(name, tests, make_scratch, remove_scratch, argc, argv);
}
