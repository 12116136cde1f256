"""The English text of every error and skipped-file reason of the app's backend, by code.

The workspace raises and records these; the app shows the English as it is and translates by the
same code (ui/i18n.py), so each English sentence is written once, here. Fields in braces are the
error's `params`.
"""

from __future__ import annotations

ERRORS = {
    "project_not_found": "There is no project '{project}'. It may have been deleted in another window.",
    "manifest_damaged": "The project's manifest {path} is damaged ({detail}). It was left exactly as it is; nothing "
                        "was overwritten. Restore the backup below, fix the file by hand, or delete the project.",
    "no_backup": "There is no backup manifest to restore.",
    "backup_damaged": "The backup manifest is damaged too ({detail}).",
    "project_exists": "A project named '{name}' already exists; choose another name.",
    "project_name_empty": "A project needs a name.",
    "class_exists": "A class named '{name}' already exists.",
    "class_name_empty": "A class needs a name, for example 'scratch' or 'no defect'.",
    "class_name_long": "Class names can have at most {limit} characters; CLIP reads the name inside a short sentence.",
    "class_not_found": "There is no class '{name}' in this project (it may have been renamed in another window).",
    "need_two_classes": "A task needs at least two classes; this project has {count}. Add classes on the Projects "
                        "page.",
    "empty_class": "Class '{name}' has no images. Upload some or delete the class.",
    "class_no_train": "Class '{name}' has only test pictures; add pictures to train on.",
    "class_too_small": "Class '{name}' has one picture; it needs at least two, one to train on and one to measure on. "
                       "Add pictures to it.",
    "bad_image_id": "That is not an image of this project.",
    "run_not_found": "There is no run '{run}' in this project.",
    "run_damaged": "Run {run} cannot be read ({detail}); delete it on the Tune page.",
    "zip_bad": "{name} is not a readable ZIP archive.",
    "zip_no_classes": "{name} holds no class folders. Put the images of each class in a folder named after the class, "
                      "and zip those folders.",
    "zip_too_many": "The archive holds {count} entries; at most {limit} are read. Split it into smaller archives.",
    "zip_total_too_big": "The archive expands to more than {limit_gb} GB; split it into smaller archives.",
    # Owners and members (access.py)
    "access_not_member": "You are not a member of project '{project}'. Ask its owner to add you on its Projects page.",
    "access_viewer": "You are a viewer of project '{project}': you can look and download, not change it. Ask its "
                     "owner to make you an editor.",
    "access_owner_only": "Only an owner of project '{project}' can do this (delete, rename, manage members, cancel "
                         "another person's job). Ask its owner.",
    "member_name_bad": "'{name}' cannot be a member's name: use the name the person signs in with.",
    "member_not_found": "'{name}' is not a member of this project.",
    "role_unknown": "'{role}' is not a role; the roles are owner, editor and viewer.",
    "last_owner": "{name} is the project's only owner: make someone else an owner first, so the project keeps one.",
    # A full, read-only or forbidden disk (disk.py): what happened and what to do, never a server path.
    "disk_full": "The workspace disk is full, so nothing was saved; the project is as it was. Free some space (delete "
                 "old runs or projects, or ask whoever runs the server), then try again.",
    "read_only": "The workspace is read-only just now, so nothing was saved; the project is as it was. Ask whoever "
                 "runs the server to make the workspace writable again.",
    "no_permission": "The server is not allowed to write to the workspace, so nothing was saved; the project is as "
                     "it was. Ask whoever runs the server to check the workspace folder's permissions.",
    # Limits (limits.py)
    "upload_too_big": "This upload holds {size_mb} MB; at most {limit_mb} MB are taken at once. Upload fewer files "
                      "at a time.",
    "project_full": "This project already holds {size_mb} MB of photos; a project holds at most {limit_mb} MB. Remove "
                    "photos you no longer need, or start another project.",
    "zip_expands_too_much": "{name} expands to more than {limit_mb} MB, {ratio} times its own size; it looks like an "
                            "archive built to fill the disk and was not read. Zip the photos as they are.",
    # Server-side paths (server_paths.py): one answer whether or not the path exists.
    "path_not_allowed": "This path cannot be used. With sign-in on, weights are read only from the folders the "
                        "server allows ({folders}); ask whoever runs the server to put the file there.",
}

# Why a file of an upload was not kept. "rejected" carries the image checks' own reason.
SKIP_REASONS = {
    "rejected": "{reason}",
    "duplicate": "the same picture is already in the project as '{other}' in class '{class}'",
    "zip_unsafe_path": "its path leaves the archive folder (absolute or '..'); it was not extracted",
    "zip_link": "it is a link, not a file; it was not extracted",
    "zip_duplicate_path": "the archive holds this path twice; the first copy was kept",
    "zip_too_big": "it expands to more than {limit_mb} MB; it was not extracted",
    "file_too_big": "it holds {size_mb} MB; at most {limit_mb} MB are taken per file. Downscale it or save it as JPEG",
    "project_full": "the project already holds its {limit_mb} MB of photos; remove photos, or start another project",
    "zip_val": "pictures in val/ are not used: move them into train/ to tune on them",
    "class_name_empty": "its folder name gives no class name",
    "class_name_long": "its folder name is longer than {limit} characters",
}
