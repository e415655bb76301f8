/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput over every file of the directories (or files)
 * given, without libFuzzer: how `make test` replays the committed corpora and every input that
 * once crashed, with the normal compiler. `make fuzz` links the same targets with libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *data = malloc(1 << 22);
    size_t size = data ? fread(data, 1, 1 << 22, f) : 0;
    fclose(f);
    if (!data)
        return -1;
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) < 0)
                return 2;
            files++;
            continue;
        }
        DIR *dir = opendir(argv[i]);
        struct dirent *de;
        while (dir && (de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            if (replay_file(path) < 0)
                return 2;
            files++;
        }
        if (dir)
            closedir(dir);
    }
    printf("replayed %d inputs\n", files);
    return files > 0 ? 0 : 1;
}
