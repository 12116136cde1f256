"""Every user-facing string of the app and the report, in English and Japanese, in one place.

    t("tune.start")                          -> "Start tuning" / "調整を開始"
    t("data.moved", n=3, name="scratch")     -> placeholders are str.format fields

The language is the session's (the sidebar switch; also kept in the URL as ?lang=ja so a
refresh keeps it). Messages of errors raised by dapt_core carry English text. The workspace's errors
and skipped-file reasons have codes: their English is dapt_core.studio.messages' (written once, there)
and their translations are here; the image checks' reasons and the split's notes have no codes and are
recognised by their wording (engine_text), anything else the engine says is shown as it is.
"""

from __future__ import annotations

import re

from dapt_core.engine.feasibility import ADVICE
from dapt_core.studio.messages import ERRORS, SKIP_REASONS

LANGUAGES = {"en": "English", "ja": "日本語"}
DEFAULT_LANGUAGE = "en"
LANG_KEY = "lang"
SWITCH_KEY = "lang-switch"

# key: (English, Japanese)
STRINGS: dict[str, tuple[str, str]] = {
    # ------------------------------------------------------------------ navigation, sidebar
    "nav.projects": ("Projects and data", "プロジェクトとデータ"),
    "nav.tune": ("Tune", "調整"),
    "nav.inspect": ("Inspect", "分析"),
    "nav.export": ("Export", "エクスポート"),
    "lang.label": ("Language / 言語", "Language / 言語"),
    "sidebar.device": ("Device: {device}", "デバイス: {device}"),
    "device.cpu": ("CPU ({threads} threads)", "CPU({threads} スレッド)"),
    "device.cpu_one": ("CPU (1 thread)", "CPU(1 スレッド)"),
    "sidebar.map_ready": ("Map engine: ready", "マップ描画エンジン: 準備完了"),
    "sidebar.map_warming": ("Map engine: warming up in the background (about 15 s after start)…",
                            "マップ描画エンジン: バックグラウンドで準備中(起動後 約15秒)…"),
    "sidebar.map_failed": ("Map engine unavailable: {error}", "マップ描画エンジンが使えません: {error}"),
    "sidebar.queue": ("Jobs: {running} running, {waiting} waiting ({mine} of them yours)",
                      "ジョブ: 実行中 {running}、待機中 {waiting}(うち あなたの分 {mine})"),
    # Streamlit's own words, which no widget parameter sets: shown through CSS (see streamlit_words_css)
    "streamlit.upload": ("Upload", "アップロード"),
    "streamlit.upload_limit": ("{mb}MB per file", "1ファイル {mb}MB まで"),
    "streamlit.press_enter": ("Press Enter to apply", "Enter キーで確定"),
    "streamlit.fullscreen": ("Fullscreen", "全画面表示"),
    "streamlit.close_fullscreen": ("Close fullscreen", "全画面表示を終了"),
    # ------------------------------------------------------------------ common
    "common.no_project": ("Open or create a project first.", "まずプロジェクトを開くか作成してください。"),
    "common.no_runs": ("This project has no saved runs yet. Start one on the Tune page.",
                       "このプロジェクトにはまだ保存された実行結果がありません。「調整」ページで開始してください。"),
    "common.project_caption": ("Project: {name}", "プロジェクト: {name}"),
    "common.run": ("Run", "実行結果"),
    "common.run_label": ("{when} · {method} · {backbone} · {shots} per class · {before} → {after}",
                         "{when} · {method} · {backbone} · 1クラス{shots}枚 · {before} → {after}"),
    "common.run_label_pass_fail": ("{when} · {method} · {backbone} · {shots} per class · escapes {escapes}, "
                                   "overkill {overkill} · accuracy {before} → {after}",
                                   "{when} · {method} · {backbone} · 1クラス{shots}枚 · 見逃し {escapes}・"
                                   "過検出 {overkill} · 正解率 {before} → {after}"),
    "common.seconds": ("{s} s", "{s} 秒"),
    "common.class": ("Class", "クラス"),
    "common.train_images": ("Training images", "学習用画像"),
    "common.test_images": ("Test images (held out)", "テスト画像(学習に不使用)"),
    "common.zero_shot": ("Zero-shot", "ゼロショット"),
    "common.tuned": ("Tuned", "調整後"),
    "common.change_points": ("Change (points)", "変化(ポイント)"),
    "tune.col_train": ("Train", "学習"),
    "tune.col_test": ("Test", "テスト"),
    "tune.test_source": ("Test photos from", "テストの出所"),
    "tune.test_own": ("its test/ folder", "test/ フォルダ"),
    "tune.test_drawn": ("drawn at random", "無作為に選択"),
    "tune.test_all_own": ("Test photos: each class's own test/ folder, never trained on.",
                          "テスト写真: 各クラスの test/ フォルダ(学習には使いません)。"),
    "tune.test_all_drawn": ("Test photos: the rest of each class, held out at random (by the seed), never trained on.",
                            "テスト写真: 各クラスの残りの写真を無作為に取り置き(シードで決定)、学習には使いません。"),
    "common.part_failed": ("This part of the page could not be shown ({what}): {error}. The rest of the page works; "
                           "the server log has the details.",
                           "ページのこの部分を表示できませんでした({what}): {error}。ページの他の部分は使えます。"
                           "詳細はサーバーのログにあります。"),
    "common.yes_delete": ("Yes, delete", "はい、削除します"),
    "common.keep": ("No, keep it", "いいえ、残します"),
    # ------------------------------------------------------------------ projects page
    "projects.title": ("Projects and data", "プロジェクトとデータ"),
    "projects.open": ("Open project", "プロジェクトを開く"),
    "projects.damaged_label": ("⚠ {name} (damaged)", "⚠ {name}(破損)"),
    "projects.intro": ("DAPT Studio teaches an image model (CLIP) your visual inspection task from a handful of "
                       "labelled photos per class, such as no defect, scratch and crack. It measures the result on "
                       "photos kept out of training, shows why it works, and exports a file and a report for the "
                       "inspection line. Everything runs on this computer, offline.",
                       "DAPT Studio は、クラスごとに数枚のラベル付き写真(良品、傷、割れなど)から、画像モデル"
                       "(CLIP)に外観検査の課題を教えます。学習に使っていない写真で結果を測り、効果の理由を示し、"
                       "検査ライン向けのファイルとレポートを書き出します。すべてこのコンピュータ上でオフラインで"
                       "動きます。"),
    "projects.demo_what": ("A ready-made project: photos of carbon-fibre panels in five classes (no defect, scratch, "
                           "crack, dent, stain). Then open Tune and press Start tuning.",
                           "すぐに使えるプロジェクト: カーボンパネルの写真、5クラス(no defect、scratch、crack、"
                           "dent、stain)。作成後は「調整」を開き、「調整を開始」を押してください。"),
    "projects.empty": ("No projects yet. Create one on the right, or try the demo task above.",
                       "プロジェクトがまだありません。右で新規作成するか、上のデモ課題を試してください。"),
    "projects.new_name": ("New project", "新しいプロジェクト"),
    "projects.new_placeholder": ("e.g. Bracket line 3 – surface defects", "例: ブラケット3号ライン 表面欠陥"),
    "projects.create": ("Create project", "プロジェクトを作成"),
    "projects.created": ("Project '{name}' created. Add classes and images below.",
                         "プロジェクト「{name}」を作成しました。下でクラスと画像を追加してください。"),
    "projects.demo": ("Try the demo task", "デモ課題を試す"),
    "projects.demo_help": ("Creates a project with the built-in inspection task: carbon-fibre panels photographed by "
                           "a monochrome camera, five classes (no defect, scratch, crack, dent, stain), 216 pictures "
                           "per class: 16 to train on and 200 to test on, the task's own split, so the numbers match "
                           "`dapt tune` on `dapt demo-data`. Works offline with the demo backbone.",
                           "組み込みの検査課題でプロジェクトを作成します。モノクロカメラで撮影したカーボン"
                           "パネル、5クラス(no defect, scratch, crack, dent, stain)、各216枚(学習用16枚・テスト用200枚。"
                           "課題そのものの分け方なので、`dapt demo-data` に対する `dapt tune` と同じ数値になります)。"
                           "デモ用バックボーンでオフラインでも動きます。"),
    "projects.demo_name": ("Demo – carbon-fibre panels", "デモ – カーボンパネル"),
    "projects.demo_progress": ("Rendering the demo pictures…", "デモ画像を生成しています…"),
    "projects.demo_progress_n": ("Rendering the demo pictures… {done}/{total}", "デモ画像を生成しています… {done}/{total}"),
    "projects.demo_done": ("Demo project '{name}' is ready. Go to Tune to teach the model.",
                           "デモプロジェクト「{name}」の準備ができました。「調整」でモデルに教えましょう。"),
    "projects.summary": ("{classes} {classes|class|classes}, {images} {images|image|images}, {runs} saved {runs|run|runs}", "{classes} クラス、{images} 枚、保存された実行結果 {runs} 件"),
    "projects.settings": ("Project settings", "プロジェクト設定"),
    "projects.rename_label": ("Project name", "プロジェクト名"),
    "projects.rename": ("Rename", "名前を変更"),
    "projects.renamed": ("Renamed to '{name}'.", "「{name}」に名前を変更しました。"),
    "projects.delete": ("Delete project", "プロジェクトを削除"),
    "projects.delete_busy": ("A run of this project is queued or running; cancel it first.",
                             "このプロジェクトの実行が待機中または実行中です。先にキャンセルしてください。"),
    "projects.delete_confirm": ("Delete project '{name}' and everything in it? This cannot be undone.",
                                "プロジェクト「{name}」とその中身をすべて削除しますか?元に戻せません。"),
    "projects.delete_confirm_full": ("Delete '{name}' with its {images} {images|image|images} and {runs} {runs|run|runs}? This cannot be undone.",
                                     "「{name}」を画像 {images} 枚と実行結果 {runs} 件ごと削除しますか?元に戻せません。"),
    "projects.deleted": ("Project '{name}' was deleted.", "プロジェクト「{name}」を削除しました。"),
    "projects.restore_backup": ("Restore the manifest from before the last change",
                                "直前の変更前のマニフェストを復元"),
    "projects.restored": ("The previous manifest was restored; the damaged one was kept next to it.",
                          "以前のマニフェストを復元しました。破損したファイルは同じフォルダに残してあります。"),
    # ------------------------------------------------------------------ data (classes, uploads)
    "data.classes": ("Classes", "クラス"),
    "data.classes_help": ("The class name is what CLIP reads, inside a sentence such as 'a photo of a scratch.': use "
                          "plain words (\"scratch\", \"no defect\"), not codes.",
                          "クラス名は「a photo of a scratch.」のような文の中でCLIPが読む言葉です。"
                          "コードではなく分かりやすい英単語(\"scratch\"、\"no defect\" など)を使ってください。"),
    "data.new_class": ("New class", "新しいクラス"),
    "data.new_class_placeholder": ("e.g. scratch", "例: scratch"),
    "data.add_class": ("Add class", "クラスを追加"),
    "data.class_added": ("Class '{name}' added.", "クラス「{name}」を追加しました。"),
    "data.no_classes": ("No classes yet. Add one class per kind of result, e.g. 'no defect' and 'scratch'.",
                        "クラスがまだありません。判定結果ごとに1クラス追加してください(例: 'no defect' と 'scratch')。"),
    "data.class_header": ("{name} — {n} {n|image|images}", "{name} — {n} 枚"),
    "data.class_header_parts": ("{name} — {n} {n|image|images} ({test} of them from test/, kept for testing)",
                                "{name} — {n} 枚(うち test/ の {test} 枚はテスト専用)"),
    "data.class_empty": ("No images in this class yet.", "このクラスにはまだ画像がありません。"),
    "data.upload": ("Add images to '{name}' (several at once, drag and drop works)",
                    "「{name}」に画像を追加(複数可、ドラッグ&ドロップ可)"),
    "data.upload_help": ("JPEG, PNG, WebP, GIF, BMP or TIFF. Files that cannot be used are listed with the reason; "
                         "the others are kept.",
                         "JPEG、PNG、WebP、GIF、BMP、TIFF。使えないファイルは理由付きで一覧表示され、"
                         "それ以外は保存されます。"),
    "data.checking": ("Checking {n} {n|file|files}…", "{n} 個のファイルを確認しています…"),
    "data.zip_title": ("Import a ZIP with one folder per class", "クラスごとのフォルダを含むZIPを取り込む"),
    "data.zip_help": ("Folder names become class names ('no_defect' → 'no defect'); images go into the class of "
                      "their folder. A train/ and test/ layout is read too, and kept: test/ pictures are only ever "
                      "measured on, never trained on. Existing classes with the same name receive the images.",
                      "フォルダ名がクラス名になります('no_defect' → 'no defect')。画像はフォルダのクラスに"
                      "入ります。train/ と test/ の構成も読み込み、その分け方を保ちます(test/ の画像は測定だけに"
                      "使い、学習には使いません)。同名のクラスが既にあればそこに追加されます。"),
    "data.zip_upload": ("ZIP archive", "ZIPアーカイブ"),
    "data.zip_reading": ("Reading the archive and checking every image…", "アーカイブを読み込み、全画像を確認しています…"),
    "data.intake_added": ("Last upload: {n} {n|image|images} added ({detail}).", "前回のアップロード: {n} 枚を追加しました({detail})。"),
    "data.intake_created": ("New classes: {classes}.", "新しいクラス: {classes}。"),
    "data.intake_skipped": ("{n} {n|file|files} were not used (see the list).", "{n} 個のファイルは使われませんでした(一覧を参照)。"),
    "data.intake_dismiss": ("Hide this summary", "この要約を閉じる"),
    "data.skipped_title": ("Files not used ({n}) and why", "使われなかったファイル({n} 個)とその理由"),
    "data.col_file": ("File", "ファイル"),
    "data.col_reason": ("Reason", "理由"),
    "data.grid_page": ("Page (of {pages}; {n} {n|image|images})", "ページ({pages} ページ中、{n} 枚)"),
    "data.show_images": ("Show the pictures", "画像を表示"),
    "data.select_images": ("Select images to move or remove", "移動または削除する画像を選択"),
    "data.select_placeholder": ("Choose by file name", "ファイル名で選択"),
    "data.move_to": ("Move to class", "移動先クラス"),
    "data.move": ("Move", "移動"),
    "data.moved": ("{n} {n|image|images} moved to '{name}'.", "{n} 枚を「{name}」に移動しました。"),
    "data.remove": ("Remove", "削除"),
    "data.removed": ("{n} {n|image|images} removed.", "{n} 枚を削除しました。"),
    "data.class_settings": ("Rename or delete class", "クラス名の変更・削除"),
    "data.rename_class": ("Class name", "クラス名"),
    "data.rename": ("Rename", "名前を変更"),
    "data.delete_class": ("Delete class", "クラスを削除"),
    "data.delete_class_confirm": ("Delete class '{name}' and its {n} {n|image|images}?", "クラス「{name}」とその画像 {n} 枚を削除しますか?"),
    "data.class_deleted": ("Class '{name}' deleted.", "クラス「{name}」を削除しました。"),
    "data.next_tune": ("Next: tune the model on these classes", "次へ: これらのクラスでモデルを調整"),
    "data.not_ready": ("To tune, the project needs at least two classes and images in every class.",
                       "調整するには、2つ以上のクラスと、すべてのクラスに画像が必要です。"),
    # skipped-file reasons with codes (the engine's own reasons are shown after "rejected")
    "skip.rejected": (SKIP_REASONS["rejected"], "使用できません: {reason}"),
    "skip.duplicate": (SKIP_REASONS["duplicate"],
                       "同じ画像が既に「{class}」クラスに「{other}」として登録されています"),
    "skip.zip_unsafe_path": (SKIP_REASONS["zip_unsafe_path"],
                             "パスがアーカイブの外を指しています(絶対パスまたは '..')。展開しませんでした"),
    "skip.zip_link": (SKIP_REASONS["zip_link"], "ファイルではなくリンクです。展開しませんでした"),
    "skip.zip_duplicate_path": (SKIP_REASONS["zip_duplicate_path"],
                                "アーカイブに同じパスが2つあります。最初のものを使いました"),
    "skip.zip_too_big": (SKIP_REASONS["zip_too_big"],
                         "展開後 {limit_mb} MB を超えるため展開しませんでした"),
    "skip.zip_val": (SKIP_REASONS["zip_val"], "val/ の画像は使いません。学習に使うには train/ へ移してください"),
    "skip.class_name_empty": (SKIP_REASONS["class_name_empty"], "フォルダ名からクラス名が作れません"),
    "skip.class_name_long": (SKIP_REASONS["class_name_long"],
                             "フォルダ名が {limit} 文字を超えています"),
    # the image checks' own reasons (dapt_core.data.images), matched by engine_reason; the English is theirs
    "reason.folder": ("is a folder, not an image file", "フォルダです。画像ファイルではありません"),
    "reason.not_found": ("file not found", "ファイルが見つかりません"),
    "reason.unreadable": ("cannot read file: {detail}", "ファイルを読み込めません: {detail}"),
    "reason.empty": ("empty file", "空のファイルです"),
    "reason.too_large_wh": ("too large: {w}x{h} pixels exceeds the limit of {limit}; downscale it",
                            "大きすぎます: {w}×{h} ピクセルは上限の {limit} ピクセルを超えています。縮小してください"),
    "reason.too_large_n": ("too large: {n} pixels exceeds the limit of {limit}; downscale it",
                           "大きすぎます: {n} ピクセルは上限の {limit} ピクセルを超えています。縮小してください"),
    "reason.too_large": ("too large: the image exceeds the limit of {limit}; downscale it",
                         "大きすぎます: 上限の {limit} ピクセルを超えています。縮小してください"),
    "reason.corrupt": ("corrupt image: {detail}", "画像が壊れています: {detail}"),
    "reason.truncated": ("truncated or corrupt {format}: {detail}", "{format} が途中で切れているか壊れています: {detail}"),
    "reason.no_pixels": ("image has no pixels", "画素がありません"),
    "reason.colour_mode": ("unsupported colour mode {mode}", "対応していない色モード({mode})です"),
    "reason.bad_header": ("corrupt {format} file: its header cannot be read",
                          "{format} ファイルが壊れています(ヘッダーを読み込めません)"),
    "reason.unsupported": ("unsupported format {format}; save it as {formats}",
                           "{format} 形式には対応していません。{formats} で保存してください"),
    "reason.web_page": ("not an image (looks like a web page saved under an image name)",
                        "画像ではありません(画像の名前で保存されたウェブページのようです)"),
    "reason.text_file": ("not an image (looks like a text file)", "画像ではありません(テキストファイルのようです)"),
    "reason.unknown_format": ("not an image, or not a supported format ({formats})",
                              "画像ではないか、対応していない形式です({formats})"),
    "note.half_trains": ("class '{cls}' has {n} {n|image|images}: {k} of them train and the rest are kept for testing "
                         "(at most half of a class trains when it has no test images of its own)",
                         "クラス「{cls}」の画像は {n} 枚です。うち {k} 枚を学習に使い、残りはテスト用に取り置きます"
                         "(専用のテスト画像がないクラスでは、学習に使うのは最大で半分です)"),
    "note.fewer_than_shots": ("class '{cls}' has only {n} training {n|image|images}, fewer than the {shots} shots asked; "
                              "all of them are used",
                              "クラス「{cls}」の学習用画像は {n} 枚だけで、指定の {shots} ショットより少ないため、"
                              "すべて使います"),
    "note.no_test": ("no test images for any class, so accuracy cannot be measured",
                     "どのクラスにもテスト画像がないため、正解率を測定できません"),
    "note.no_test_no_shots": ("no test images for any class, so accuracy cannot be measured (without a shots number "
                              "every image is used for training)",
                              "どのクラスにもテスト画像がないため、正解率を測定できません(ショット数を指定しないと"
                              "すべての画像が学習に使われます)"),
    "note.class_no_test": ("class '{cls}' has no test images, so its accuracy cannot be measured",
                           "クラス「{cls}」にはテスト画像がないため、その正解率は測定できません"),
    # ------------------------------------------------------------------ methods
    "method.dapt.name": ("DAPT", "DAPT"),
    "method.dapt.help": ("Text and visual prompts, with the two dispersion losses (recommended)",
                         "テキストと画像のプロンプトを2つの分散損失とともに学習(推奨)"),
    "method.coop.name": ("CoOp", "CoOp"),
    "method.coop.help": ("Text prompt only, cross-entropy", "テキストプロンプトのみ、交差エントロピー"),
    "method.vpt.name": ("VPT", "VPT"),
    "method.vpt.help": ("Visual prompt only, cross-entropy", "画像プロンプトのみ、交差エントロピー"),
    "method.zeroshot.name": ("Zero-shot", "ゼロショット"),
    "method.zeroshot.help": ("No training: CLIP as it is, for a baseline", "学習なし: CLIPそのまま(比較の基準)"),
    # ------------------------------------------------------------------ tune page: the check before Start
    "feas.title": ("Can this model tell your classes apart?", "このモデルでクラスを見分けられるか"),
    "feas.need_setup": ("Choose an available backbone and a valid split above; the check then runs by itself.",
                        "上で使えるバックボーンと有効な分割を選ぶと、確認が自動で始まります。"),
    "feas.too_few": ("The check needs at least 2 training photos of every class (one is left out, the others make "
                     "its class mean). Raise the shots or add photos.",
                     "確認には各クラス2枚以上の学習用画像が必要です(1枚を除き、残りでクラス平均を作ります)。"
                     "ショット数を増やすか、画像を追加してください。"),
    "feas.queued": ("The check waits for the job ahead of it (place {place} in the queue).",
                    "確認は前のジョブの終了を待っています(待ち順 {place} 番目)。"),
    "feas.loading": ("Checking: loading the model…", "確認中: モデルを読み込んでいます…"),
    "feas.running": ("Checking: reading the training photos ({step} of {steps} batches)…",
                     "確認中: 学習用画像を読み込んでいます({steps} バッチ中 {step})…"),
    "feas.failed": ("The check could not run: {error}", "確認を実行できませんでした: {error}"),
    "feas.cancelled": ("The check was cancelled.", "確認は取り消されました。"),
    "feas.run_again": ("Check again", "もう一度確認"),
    "feas.summary": ("On the frozen features of your {n} training photos, this model tells the classes apart "
                     "{accuracy} of the time (chance {chance}, 95% interval {low}–{high}): {level}.",
                     "学習用画像 {n} 枚の(調整前の)特徴で、このモデルがクラスを正しく見分けたのは {accuracy} です"
                     "(偶然なら {chance}、95%区間 {low}–{high})。判定: {level}。"),
    "feas.level.clear": ("clearly", "はっきり見分けられます"),
    "feas.level.partial": ("partly", "ある程度は見分けられます"),
    "feas.level.near_chance": ("hardly better than guessing", "当て推量とほとんど変わりません"),
    "feas.chance_uniform": ("Chance: one in {classes} classes, the score of a random answer.",
                            "偶然の水準: {classes} クラスから無作為に答えた場合の正解率です。"),
    "feas.chance_majority": ("Chance: the score of always answering the largest class, '{name}' (the classes have "
                             "different numbers of photos).",
                             "偶然の水準: 常に最も画像の多いクラス「{name}」と答えた場合の正解率です"
                             "(クラスごとに画像の枚数が異なるため)。"),
    "feas.pairs": ("Mixed up most:", "よく取り違えるクラスの組:"),
    "feas.pair": ("'{first}' and '{second}': {count} {count|time|times} ({first_as_second} '{first}' called "
                  "'{second}', {second_as_first} the other way)",
                  "「{first}」と「{second}」: {count} 回(「{first}」を「{second}」と判定 {first_as_second} 回、"
                  "逆が {second_as_first} 回)"),
    "feas.pass_fail": ("Good ('{good}') vs defective: told apart {accuracy} (balanced accuracy, chance 50%, 95% "
                       "interval {low}–{high}): {level}. {escapes} of {defective} defective photos were called "
                       "good, {overkill} of {goods} good photos defective.",
                       "良品(「{good}」)と不良の見分け: {accuracy}(バランス正解率、偶然なら 50%、95%区間 "
                       "{low}–{high})。判定: {level}。不良 {defective} 枚のうち {escapes} 枚を良品と判定し、"
                       "良品 {goods} 枚のうち {overkill} 枚を不良と判定しました。"),
    "feas.zero_shot": ("Zero-shot (no tuning) on the same photos: {accuracy}.",
                       "同じ画像でのゼロショット(調整なし)の正解率: {accuracy}。"),
    "feas.try": ("What to try:", "試すこと:"),
    "feas.details": ("How the check works, per class", "確認の方法とクラスごとの結果"),
    "feas.method": ("Each training photo is given the class whose mean feature (from the other photos) is closest "
                    "to its own, on the features of the frozen model before any tuning (leave-one-out). Clearly: "
                    "the interval's lower end is at least halfway from chance to 100%; hardly better than "
                    "guessing: it reaches down to chance. {seconds} s; the features are kept, so a second check "
                    "of these photos is instant.",
                    "各学習用画像を、調整前のモデルの特徴で、他の画像から求めた平均特徴が最も近いクラスに割り当て"
                    "ます(1つ抜き交差検証)。「はっきり」は区間の下限が偶然の水準と100%の中間以上、「当て推量と"
                    "ほとんど変わらない」は下限が偶然の水準以下の場合です。所要 {seconds} 秒。特徴は保存される"
                    "ため、同じ画像の再確認はすぐ終わります。"),
    "feas.col_accuracy": ("Told apart", "正しく見分けた割合"),
    "feas.col_photos": ("Photos", "画像数"),
    "feas.advice.start": (ADVICE["start"], "調整前の特徴ですでにクラスがよく分かれています。調整は良い出発点から始まります。"),
    "feas.advice.pass_fail_only": (ADVICE["pass_fail_only"],
                                   "欠陥の種類は取り違えても、良品と不良は見分けられています({pass_fail_accuracy})。"
                                   "ラインに必要なのが合否だけなら、十分に見込みがあります。"),
    "feas.advice.not_tuning_yet": (ADVICE["not_tuning_yet"],
                                   "調整の前に、画像かバックボーンを変えてください。調整前のモデルが違いを捉えられない"
                                   "場合、どの調整手法でも偶然の水準近くにとどまりがちです。"),
    "feas.advice.try_tiles": (ADVICE["try_tiles"],
                              "タイルをオンにしてください(チューニングページのタイル、または dapt tune --tiles auto)。"
                              "写真は最大 {width}×{height} ピクセルで、{size}×{size} に縮小されます。タイルを使うと"
                              "ほぼ元の解像度でも見ます。このチェックは写真全体だけを見ています。"),
    "feas.advice.closer_photos": (ADVICE["closer_photos"],
                                  "欠陥をもっと近くで、画面内に大きく、鮮明に撮影してください。このモデルは各画像を "
                                  "{size}×{size} ピクセルで見るため、小さな欠陥は見えなくなることがあります。"),
    "feas.advice.other_backbone": (ADVICE["other_backbone"],
                                   "別のバックボーンを試してください。より大きな CLIP(例: ViT-B-16:openai)や、"
                                   "お手元の画像に近い画像で学習されたモデルです。"),
    "feas.advice.more_shots": (ADVICE["more_shots"],
                               "クラスごとの画像を増やしてください(最も少ないクラス「{name}」は {count} 枚)。"
                               "この枚数では95%区間の幅が {width} ポイントもあります。"),
    "feas.advice.check_labels": (ADVICE["check_labels"],
                                 "「{first}」と「{second}」のラベルを確認してください。{photos} 枚のうち {count} 回"
                                 "取り違えています。本当に似ているなら、違いがはっきり写るように撮影するか、"
                                 "2つのクラスをまとめてください。"),
    # ------------------------------------------------------------------ tune page
    "tune.title": ("Tune", "調整"),
    "tune.backbone": ("Backbone (the CLIP model)", "バックボーン(CLIPモデル)"),
    "tune.source": ("Where the weights come from", "重みの入手元"),
    "tune.source.demo": ("Demo (offline)", "デモ(オフライン)"),
    "tune.source.open_clip": ("open_clip name and tag", "open_clip の名前とタグ"),
    "tune.source.file": ("Local weights file", "ローカルの重みファイル"),
    "tune.source.folder": ("Local model folder", "ローカルのモデルフォルダ"),
    "tune.source.spec": ("Type a spec", "指定を入力"),
    "tune.pretrained": ("Model and pretrained tag", "モデルと学習済みタグ"),
    "tune.architecture": ("Architecture", "アーキテクチャ"),
    "tune.weights_path": ("Path of the weights file on this computer (.pt, .bin, .safetensors)",
                          "このコンピュータ上の重みファイルのパス(.pt、.bin、.safetensors)"),
    "tune.folder_path": ("Folder with open_clip_config.json and open_clip_model.safetensors",
                         "open_clip_config.json と open_clip_model.safetensors を含むフォルダ"),
    "tune.spec": ("Backbone spec (NAME:TAG, NAME:/path, local-dir:/path, demo)",
                  "バックボーン指定(NAME:TAG、NAME:/path、local-dir:/path、demo)"),
    "tune.need_spec": ("Choose a backbone to see whether its weights are available.",
                       "バックボーンを選ぶと、重みが使えるかどうかを表示します。"),
    "tune.checking": ("Checking the weights of {spec}…", "{spec} の重みを確認しています…"),
    "tune.ready": ("Weights available: {spec} ({weights}, {dim}-dimensional embeddings).",
                   "重みは使用可能です: {spec}({weights}、{dim} 次元の埋め込み)。"),
    "tune.unavailable": ("These weights cannot be used here: {message}", "この重みはここでは使えません: {message}"),
    "tune.check_again": ("Check again", "再確認"),
    "tune.use_demo": ("Use the demo backbone", "デモ用バックボーンを使う"),
    "tune.device": ("Runs on: {device}", "実行デバイス: {device}"),
    "tune.method": ("Method", "手法"),
    "tune.shots": ("Training images per class (shots)", "1クラスあたりの学習用画像数(ショット数)"),
    "tune.shots_help": ("This many images of each class are drawn at random for training. Test images are held "
                        "out to measure accuracy honestly: a class's own test/ pictures (from a ZIP with train/ and "
                        "test/, or the demo task), otherwise at least half of the class.",
                        "各クラスからこの枚数をランダムに選んで学習に使います。正解率を公正に測るため、テスト画像は"
                        "取り分けます: そのクラスの test/ の画像(train/ と test/ を含むZIP、またはデモ課題)、"
                        "なければクラスの半分以上です。"),
    "tune.preset": ("Training augmentation", "学習時のデータ拡張"),
    "tune.preset.inspection": ("Inspection photos", "検査画像向け"),
    "tune.preset.recipe": ("The paper's recipe", "論文のレシピ"),
    "tune.preset_help": ("Each epoch shows the model altered copies of the training photos. Inspection photos: "
                         "crops keep at least half of the photo, so a small defect stays in view. The paper's "
                         "recipe: crops down to 8% of the photo, as the published benchmarks were measured.",
                         "各エポックで学習用画像を少しずつ変えた複製をモデルに見せます。検査画像向け: 切り抜きは画像の"
                         "半分以上を残すので、小さな欠陥が画面から外れません。論文のレシピ: 画像の8%まで切り抜きます"
                         "(公開ベンチマークの測定条件)。"),
    "tune.rotations": ("Orientation does not matter (allow 90° turns)", "向きは関係ない(90°回転を許可)"),
    "tune.rotations_help": ("Tick when a photo turned by 90° or mirrored shows the same class, as with most surface "
                            "defects. Leave it off when up and down matter (labels, drips, assembled parts).",
                            "90°回転や鏡像にしても同じクラスに見える場合(多くの表面欠陥)にチェックします。上下に意味が"
                            "ある場合(ラベル、垂れ、組み立て部品)は外してください。"),
    "tune.tiles": ("Tiles (for small defects on large photos)", "タイル(大きな写真の小さな欠陥向け)"),
    "tune.tiles_help": ("The model sees a photo shrunk to its input (128 or 224 px), where a small defect on a large "
                        "photo can vanish. With tiles it also looks at overlapping squares of the photo at nearly "
                        "their own size: a photo fails when any tile shows a defect and passes only when every tile "
                        "looks good. Training and checking take longer (about the number of tiles). Tiles also give "
                        "heatmaps: where on the photo the defect is.",
                        "モデルは写真を入力サイズ(128 または 224 px)に縮小して見るため、大きな写真の小さな欠陥は消える"
                        "ことがあります。タイルを使うと、写真を重なり合う正方形に分けてほぼ元の解像度でも見ます。どれか"
                        "1 枚のタイルに欠陥があれば不合格、すべてのタイルが良品に見えるときだけ合格です。学習と評価は"
                        "タイル数に応じて長くなります。タイルからヒートマップ(欠陥が写真のどこにあるか)も得られます。"),
    "tune.tiles.off": ("Off: the whole photo only", "オフ: 写真全体のみ"),
    "tune.tiles.auto": ("Auto: tiles of twice the model's input on larger photos", "自動: 大きな写真をモデル入力の 2 倍のタイルに分割"),
    "tune.tiles_preview": ("The project's largest photo ({width} × {height} px) in {tiles} overlapping tiles of {side} "
                           "px (one filled); each tile is shrunk to the model's {size} px, and the whole photo is seen "
                           "too.", "プロジェクトで最大の写真({width} × {height} px)を、重なり合う {side} px のタイル "
                           "{tiles} 枚に分けます(1 枚を塗りつぶし表示)。各タイルはモデルの {size} px に縮小し、写真全体"
                           "も見ます。"),
    "tune.tiles_none": ("The project's largest photo ({width} × {height} px) is no larger than one tile: photos are "
                        "seen whole, as without tiles.", "プロジェクトで最大の写真({width} × {height} px)でもタイル "
                        "1 枚以下の大きさなので、タイルなしと同じく全体で見ます。"),
    "heat.title": ("Where is the defect", "欠陥はどこか"),
    "heat.caption": ("Warm colours show where the model sees a defect; the white box is the hot region. Drawn faint "
                     "when no tile looks defective. A map shows one region per photo, to within about an eighth of "
                     "a tile.", "暖色はモデルが欠陥を見ている場所、白い枠はその中心領域です。欠陥に見えるタイルがない"
                     "ときは薄く描きます。1 枚の写真につき 1 か所を、タイルの約 8 分の 1 の精度で示します。"),
    "heat.none": ("These photos are no larger than one tile: no heatmap.", "これらの写真はタイル 1 枚以下の大きさのため、"
                  "ヒートマップはありません。"),
    "export.bench_tiles": ("This file looks at photos in tiles: each {width} × {height} px photo (the run's largest test "
                           "photo) is {views} views, the whole photo and its tiles, and the times are per photo, one "
                           "photo at a time.", "このファイルは写真をタイルで見ます。{width} × {height} px の写真(この実行で"
                           "最大のテスト写真)1 枚は写真全体とタイルの {views} ビューで、時間は 1 枚ずつ処理したときの写真"
                           "1 枚あたりです。"),
    "est.measure": ("Estimate the time", "所要時間を見積もる"),
    "est.measure_help": ("Times a few real training steps on this machine (seconds; kept for next time).",
                         "このマシンで実際の学習ステップを数回計測します(数秒。次回のために保存します)。"),
    "est.busy": ("Wait for the running job: two runs at once slow each other down, so the times would be wrong.",
                 "実行中のジョブの終了を待ってください。2 つ同時に動くと互いに遅くなり、正しく計れません。"),
    "est.measuring": ("Timing a few training steps…", "学習ステップを計測中…"),
    "est.result": ("Expected time on this machine: about {total} (training {train}: {steps} steps of {step} s; "
                   "evaluation {evaluate}; the rest {other}).", "このマシンでの見込み時間: 約 {total}(学習 {train}: "
                   "{steps} ステップ × {step} 秒、評価 {evaluate}、その他 {other})。"),
    "heat.untiled": ("This run was tuned without tiles, so it has no heatmaps. Tune with Tiles on (Tune page) to see "
                     "where on each photo the defect is.", "この実行はタイルなしで学習したため、ヒートマップはありません。"
                     "各写真のどこに欠陥があるかを見るには、チューニングページでタイルをオンにして学習してください。"),
    "heat.pick": ("Photo", "写真"),
    "heat.pick_row": ("{name}: {true}, answered {predicted}", "{name}: {true}、判定 {predicted}"),
    "heat.drawing": ("Drawing the map…", "マップを描画中…"),
    "heat.missing": ("This photo is no longer in the project, or it is no larger than one tile.",
                     "この写真はプロジェクトにないか、タイル 1 枚以下の大きさです。"),
    "heat.example_caption": ("{name} (true: {true}): {answer}", "{name}(正解: {true}): {answer}"),
    "report.heatmaps_help": ("Defective test photos with where the model sees the defect, its mistakes first.",
                             "欠陥のあるテスト写真と、モデルが欠陥を見ている場所(誤りを先に表示)。"),
    "tune.advanced": ("Advanced settings", "詳細設定"),
    "tune.epochs": ("Epochs (0 = the recipe's {recipe})", "エポック数(0 = 推奨値 {recipe})"),
    "tune.epochs_help": ("Passes over the training images. The recipe uses 50 for 1 shot, 100 for 2-4, 200 for 8+.",
                         "学習用画像を何周するか。推奨値は1ショットで50、2〜4で100、8以上で200です。"),
    "tune.lr": ("Fixed learning rate", "固定の学習率"),
    "tune.lr_scaled_value": ("This model trains at {lr}: the recipe's 0.002 × 100 / its logit scale {scale}.",
                             "このモデルの学習率は {lr}(推奨値 0.002 × 100 / このモデルのロジットスケール {scale})。"),
    "tune.lr_mode": ("Learning rate", "学習率"),
    "tune.lr_mode.scaled": ("The recipe's, scaled to this model (recommended)", "推奨値をこのモデルに合わせて換算(推奨)"),
    "tune.lr_mode.quick": ("Try three rates on the training images first (about 1.3× the time)",
                           "先に学習用画像で3つの学習率を試す(時間は約1.3倍)"),
    "tune.lr_mode.fixed": ("Fixed: the number below", "固定: 下の値"),
    "tune.lr_mode_help": ("The paper's rate, 0.002, was chosen for CLIP models whose logit scale is 100; the gradient "
                          "that reaches the prompts grows with it, so the rate is scaled by 100 / this model's logit "
                          "scale. The trial runs score three rates on a quarter of the training images held out; on "
                          "the demo tasks they did no better and sometimes picked a rate that ended below zero-shot.",
                          "論文の学習率0.002はロジットスケールが100のCLIP向けに選ばれたものです。プロンプトに届く勾配は"
                          "この値に比例するため、100 ÷ このモデルのロジットスケール を掛けて換算します。試行では学習用"
                          "画像の4分の1を取り分けて3つの学習率を評価しますが、デモ課題では換算値より良くならず、"
                          "ゼロショットを下回る学習率を選ぶこともありました。"),
    "tune.beta_v": ("β visual (intra-dispersion)", "β 画像(クラス内分散)"),
    "tune.beta_v_help": ("Weight of the loss that pulls images of a class together.", "同じクラスの画像を近づける損失の重み。"),
    "tune.beta_t": ("β text (inter-dispersion)", "β テキスト(クラス間分散)"),
    "tune.beta_t_help": ("Weight of the loss that pushes the class descriptions apart.", "クラスの説明文どうしを離す損失の重み。"),
    "tune.n_ctx": ("Text prompt length", "テキストプロンプト長"),
    "tune.n_vis": ("Visual prompt length", "画像プロンプト長"),
    "tune.seed": ("Seed", "シード"),
    "tune.seed_help": ("Decides which images are drawn for training and the random start; the same seed repeats a run.",
                       "学習用画像の選び方と初期値を決めます。同じシードなら同じ実行を再現できます。"),
    "tune.batch_size": ("Batch size", "バッチサイズ"),
    "tune.note": ("Note: {note}", "注: {note}"),
    "tune.start": ("Start tuning", "調整を開始"),
    "tune.live": ("Progress", "進捗"),
    "tune.live_empty": ("Nothing running. Press Start; two people pressing Start queue one after the other.",
                        "実行中のものはありません。「調整を開始」を押してください。複数人が同時に押した場合は順番待ちになります。"),
    "tune.done": ("Run saved: accuracy {before} zero-shot → {after} tuned on {n} held-out {n|image|images} (training {seconds} s).",
                  "保存しました: 学習に使っていない {n} 枚での正解率 ゼロショット {before} → 調整後 {after}(学習 {seconds} 秒)。"),
    "tune.open_inspect": ("See why it works", "効果の理由を見る"),
    "tune.interrupted": ("A run started {when} ({method} on {backbone}, {shots} per class) was stopped by a server "
                         "restart before it finished; nothing of it was saved. Start it again.",
                         "{when} に開始した実行({method}、{backbone}、1クラス{shots}枚)は、完了前にサーバーが"
                         "再起動したため停止しました。何も保存されていません。もう一度開始してください。"),
    "tune.runs": ("Saved runs", "保存された実行結果"),
    "tune.no_runs": ("No runs yet.", "まだ実行結果はありません。"),
    "tune.run_damaged": ("Run {run} cannot be read; delete it.", "実行結果 {run} を読み込めません。削除してください。"),
    "tune.inspect": ("Inspect", "分析"),
    "tune.delete_run": ("Delete", "削除"),
    "tune.delete_run_confirm": ("Delete run {run}? Its prompt file and metrics go with it.",
                                "実行結果 {run} を削除しますか?プロンプトファイルと指標も削除されます。"),
    # ------------------------------------------------------------------ jobs
    "job.title_tune": ("Tuning", "調整"),
    "job.title_tune_detail": ("Tuning: {method} on {backbone}, {shots} per class", "調整: {method}、{backbone}、1クラス{shots}枚"),
    "job.title_evaluate": ("Scoring an imported prompt file", "取り込んだプロンプトファイルの評価"),
    "job.queued": ("Waiting for the {device}: place {place} in the queue. It starts by itself.",
                   "{device} の空き待ち: 待ち順 {place} 番目。順番が来ると自動で始まります。"),
    "job.phase.queued": ("Waiting…", "待機中…"),
    "job.phase.loading": ("Loading the model…", "モデルを読み込んでいます…"),
    "job.phase.preparing": ("Drawing the training and test images…", "学習用とテスト用の画像を選んでいます…"),
    "job.phase.select": ("Choosing the learning rate…", "学習率を選んでいます…"),
    "job.progress_select": ("Choosing the learning rate on the training images: step {step} of {steps}",
                            "学習用画像で学習率を選んでいます: {steps} ステップ中 {step}"),
    "job.phase.prototypes": ("Measuring the class centres of the training images…", "学習用画像のクラス中心を計算しています…"),
    "job.phase.train": ("Training…", "学習中…"),
    "job.phase.evaluate": ("Scoring the held-out images…", "取り分けた画像で評価しています…"),
    "job.phase.saving": ("Saving the run…", "実行結果を保存しています…"),
    "job.phase.mapping": ("Drawing the embedding map…", "埋め込みマップを作成しています…"),
    "job.phase.cancelled": ("Cancelled", "キャンセルしました"),
    "job.progress_train": ("Epoch {epoch}/{epochs} · step {step}/{steps} · about {eta} left",
                           "エポック {epoch}/{epochs} · ステップ {step}/{steps} · 残り約 {eta}"),
    "job.progress_evaluate": ("Scoring: batch {step}/{steps} · about {eta} left", "評価中: バッチ {step}/{steps} · 残り約 {eta}"),
    "job.loss": ("Loss", "損失"),
    "job.train_accuracy": ("Training accuracy", "学習正解率"),
    "job.elapsed": ("Elapsed", "経過時間"),
    "job.cancel": ("Cancel", "キャンセル"),
    "job.cancelled": ("Cancelled. Nothing was saved; the project is as it was.",
                      "キャンセルしました。何も保存されておらず、プロジェクトは元のままです。"),
    "job.failed": ("The run stopped: {error}", "実行が停止しました: {error}"),
    "job.yours": ("yours", "あなたのジョブ"),
    "job.others": ("started in another session", "別のセッションのジョブ"),
    "job.cancel_others_confirm": ("Someone started this job in another browser tab or session. Cancel it anyway? "
                                  "Its results would be lost for them.",
                                  "このジョブは別のタブまたはセッションで開始されました。それでもキャンセルしますか?"
                                  "その人の結果は失われます。"),
    "job.cancel_others_yes": ("Yes, cancel their job", "はい、キャンセルします"),
    "job.cancel_others_no": ("No, let it run", "いいえ、続けさせます"),
    "tune.own_run_active": ("Your run is still going (see on the right); Start is available again when it ends or "
                            "once you cancel it.",
                            "あなたの実行がまだ続いています(右側を参照)。終了するかキャンセルすると再び開始できます。"),
    "job.dismiss": ("Hide", "閉じる"),
    # ------------------------------------------------------------------ charts
    "chart.class": ("Class", "クラス"),
    "chart.predicted": ("Predicted", "予測"),
    "chart.true": ("True class", "正解クラス"),
    "chart.text_embeddings": ("Class text (★)", "クラスのテキスト(★)"),
    "chart.text_point": ("the class description, placed among the images it matches best",
                         "クラスの説明文(最もよく合う画像の位置)"),
    "chart.step": ("Step", "ステップ"),
    "chart.epoch": ("Epoch", "エポック"),
    "chart.loss": ("Loss", "損失"),
    "chart.loss_total": ("Total loss", "損失の合計"),
    "chart.loss_ce": ("Cross-entropy", "交差エントロピー"),
    "chart.loss_intra": ("β {beta} × intra-dispersion", "β {beta} × クラス内分散"),
    "chart.loss_inter": ("β {beta} × inter-dispersion", "β {beta} × クラス間分散"),
    "chart.hidden_lines": ("Under the lines shown, too close to see: {names}", "表示中の線と重なり見えないもの: {names}"),
    "chart.train_accuracy": ("Training accuracy", "学習正解率"),
    "chart.accuracy": ("Accuracy", "正解率"),
    # ------------------------------------------------------------------ inspect page
    "inspect.title": ("Inspect", "分析"),
    "inspect.zero_shot": ("Accuracy before (zero-shot)", "調整前の正解率(ゼロショット)"),
    "inspect.tuned": ("Accuracy after tuning", "調整後の正解率"),
    "inspect.test_images": ("Held-out test images", "テスト画像(学習に不使用)"),
    "inspect.train_time": ("Training time (m:ss)", "学習時間(分:秒)"),
    "inspect.map_title": ("How the images are arranged, before and after", "画像の配置: 調整前と調整後"),
    "inspect.map_help": ("Each dot is a held-out test image, coloured by its true class. Both maps come from one "
                         "shared UMAP fit, so positions compare: after tuning, dots of one colour should gather and "
                         "sit apart from other colours.",
                         "点は学習に使っていないテスト画像で、色は正解クラスです。2つのマップは1回の共通UMAPから"
                         "作られているので位置を比較できます。調整後は同じ色の点が集まり、他の色から離れるのが理想です。"),
    "inspect.map_stars": ("★ is a class's text: the description the model compares every photo with, placed in the "
                          "same map among the photos it matches best. A star among another colour's dots matches "
                          "those photos better than its own; a star between clouds cannot tell them apart. The map "
                          "squeezes many dimensions into two and keeps who is near whom, not exact distances, so a "
                          "star can sit away from its photos; the accuracy and confusion numbers below are measured "
                          "in the full space.",
                          "★はクラスのテキストです。モデルがすべての写真と比べる説明文で、同じマップ上の最もよく合う"
                          "写真のあたりに置かれます。星が別の色の点の中にあれば、その説明文は自分のクラスよりそちらの"
                          "写真によく合い、点の群れの間にあれば見分けられていないことを示します。マップは多くの次元を"
                          "2次元に押し縮めたもので、保つのは近さの関係だけで正確な距離ではないため、星が自分の写真"
                          "から離れて見えることがあります。下の正解率と混同行列は元の次元で測ったものです。"),
    "inspect.map_before": ("Before: CLIP as it is (zero-shot)", "調整前: CLIPそのまま(ゼロショット)"),
    "inspect.map_after": ("After: tuned prompts", "調整後: 学習したプロンプト"),
    "inspect.warming": ("Preparing the map engine (once after a server start, about 15 s)…",
                        "マップ描画エンジンを準備しています(サーバー起動後に1回だけ、約15秒)…"),
    "inspect.mapping": ("Drawing the map of {n} image embeddings…", "{n} 個の画像埋め込みのマップを作成しています…"),
    "inspect.map_subsampled": ("The map shows {shown} of the {total} test {total|image|images} (an even share of every class).",
                               "マップにはテスト画像 {total} 枚のうち {shown} 枚を表示しています(各クラス同じ割合)。"),
    "inspect.map_pca": ("Too few images for UMAP: the map is a PCA plane.", "UMAPには画像が少なすぎるため、PCAの平面で表示しています。"),
    "inspect.dispersion_title": ("Dispersion: tight classes, far apart", "分散: クラスはまとまり、互いに離れているか"),
    "inspect.accuracy_title": ("Accuracy per class", "クラス別の正解率"),
    "inspect.confusion_title": ("Confusion matrices", "混同行列"),
    "inspect.confusion_help": ("Rows are the true class, columns the prediction; the diagonal is correct.",
                               "行が正解クラス、列が予測です。対角線上が正解です。"),
    "inspect.confusion_before": ("Before (zero-shot)", "調整前(ゼロショット)"),
    "inspect.confusion_after": ("After tuning", "調整後"),
    "inspect.training_curve": ("Training curve", "学習曲線"),
    "inspect.mistakes_title": ("Misclassified test images", "誤分類されたテスト画像"),
    "inspect.still_wrong": ("Wrong after tuning ({n})", "調整後も誤り({n})"),
    "inspect.fixed": ("Fixed by tuning ({n})", "調整で正解に({n})"),
    "inspect.broken": ("Wrong only after tuning ({n})", "調整後に誤りに({n})"),
    "inspect.none_here": ("None.", "ありません。"),
    "inspect.caption_wrong": ("{true} → {predicted} · {name}", "{true} → {predicted} · {name}"),
    "inspect.caption_fixed": ("{true} (was {predicted}) · {name}", "{true}(以前は {predicted})· {name}"),
    "inspect.to_export": ("Next: export the prompt file and the report", "次へ: プロンプトファイルとレポートをエクスポート"),
    # ------------------------------------------------------------------ the sentence for a manager
    "story.up": ("Taught with {shots} {shots|photo|photos} per class, the model now classifies {after} of {n_test} {n_test|photo|photos} it never "
                 "saw correctly, up from {before} before tuning.",
                 "1クラスあたり{shots}枚の写真で教えた結果、学習に使っていない{n_test}枚の写真の正解率は"
                 "調整前の{before}から{after}に上がりました。"),
    "story.up_best": ("Taught with {shots} {shots|photo|photos} per class, the model now classifies {after} of {n_test} {n_test|photo|photos} it "
                      "never saw correctly, up from {before} before tuning; the biggest gain is on '{cls}' "
                      "({cls_before} → {cls_after}, on {cls_n} {cls_n|photo|photos}).",
                      "1クラスあたり{shots}枚の写真で教えた結果、学習に使っていない{n_test}枚の写真の正解率は"
                      "調整前の{before}から{after}に上がりました。最も改善したのは「{cls}」({cls_before} → "
                      "{cls_after}、{cls_n}枚で測定)です。"),
    "story.down": ("Taught with {shots} {shots|photo|photos} per class, the model classifies {after} of {n_test} unseen {n_test|photo|photos} "
                   "correctly, down from {before} before tuning: tuning did not help here; try more photos per class "
                   "or a lower learning rate.",
                   "1クラスあたり{shots}枚の写真で教えましたが、未使用の{n_test}枚の正解率は調整前の{before}から"
                   "{after}に下がりました。この条件では効果がありません。写真を増やすか、学習率を下げてください。"),
    "story.same": ("Taught with {shots} {shots|photo|photos} per class, the model classifies {after} of {n_test} unseen {n_test|photo|photos} "
                   "correctly, the same as before tuning ({before}).",
                   "1クラスあたり{shots}枚の写真で教えた結果、未使用の{n_test}枚の正解率は{after}で、"
                   "調整前({before})と変わりませんでした。"),
    "story.small_sample": ("Measured on only {n_test} {n_test|photo|photos}: by chance alone an accuracy can be off "
                           "by up to about ±{margin} points (95%), so read small differences with care and add "
                           "test photos for a firmer number.",
                           "測定に使った写真は{n_test}枚だけです。偶然だけで正解率が最大で約±{margin}ポイント"
                           "ずれることがあります(95%)。小さな差は慎重に読み、確かな数字にはテスト写真を増やしてください。"),
    "story.no_test": ("This run has no held-out test images, so its accuracy could not be measured.",
                      "この実行にはテスト画像がないため、正解率を測定できませんでした。"),
    # ------------------------------------------------------------------ pass or fail (ui/pass_fail_view.py)
    "pf.count": ("{k} of {n} ({rate})", "{n}個中{k}個({rate})"),
    "pf.headline": ("On the line, tuned: {escapes} defective parts would pass as '{good}' (escapes) and {overkill} "
                    "good parts would be stopped (overkill), passing a part when '{good}' is its most likely class. "
                    "Zero-shot: {escapes_before} escapes, {overkill_before} overkill.",
                    "ライン判定(最も確からしいクラスが「{good}」なら合格)では、調整後は不良品 {escapes} が「{good}」として"
                    "流出し(見逃し)、良品 {overkill} が止められます(過検出)。ゼロショットでは見逃し {escapes_before}、"
                    "過検出 {overkill_before}。"),
    "pf.escapes_by_class": ("Most escapes: {classes}.", "見逃しが多い不良: {classes}。"),
    "pf.line.no_threshold": ("No pass threshold can promise at most {rate} escapes from {n} defective test "
                             "{n|photo|photos} (it takes at least {needed}): nothing would pass. Add defective test "
                             "photos or allow a higher escape rate.",
                             "不良のテスト写真 {n} 枚では、見逃し {rate} 以下を保証する合格しきい値を置けません"
                             "(最低 {needed} 枚必要)。このままでは何も合格しません。不良のテスト写真を増やすか、"
                             "許容する見逃し率を上げてください。"),
    "pf.line.not_ready": ("Not ready for a line: to let through at most {rate} of defects it would stop {overkill} of "
                          "good parts (measured on held-out photos: {escapes} escapes).",
                          "まだラインには使えません: 不良の見逃しを {rate} 以下にすると、良品の {overkill} を止めてしまいます"
                          "(テスト写真での実測: 見逃し {escapes})。"),
    "pf.line.costly": ("Usable with care: at most {rate} escapes costs {overkill} of good parts stopped (measured on "
                       "held-out photos: {escapes} escapes); someone has to re-check them.",
                       "注意すれば使えます: 見逃しを {rate} 以下にすると良品の {overkill} が止まります(テスト写真での実測: "
                       "見逃し {escapes})。止まった品は人の再確認が必要です。"),
    "pf.line.workable": ("Workable: at most {rate} escapes costs {overkill} of good parts stopped (measured on held-out "
                         "photos: {escapes} escapes).",
                         "実用的です: 見逃しを {rate} 以下にしても、止まる良品は {overkill} です(テスト写真での実測: "
                         "見逃し {escapes})。"),
    "pf.escapes_short": ("Escapes", "見逃し"),
    "pf.escapes_short_help": ("Defective parts that would pass as '{good}', tuned: {count}.",
                              "「{good}」として合格してしまう不良品(調整後): {count}。"),
    "pf.overkill_short": ("Overkill", "過検出"),
    "pf.overkill_short_help": ("'{good}' parts that would be stopped as defective, tuned: {count}.",
                               "不良として止められてしまう「{good}」(調整後): {count}。"),
    "pf.escapes": ("Escapes (defects passed)", "見逃し(不良を合格)"),
    "pf.overkill": ("Overkill (good parts stopped)", "過検出(良品を不合格)"),
    "pf.escapes_long": ("Escapes: defective parts called '{good}'", "見逃し: 不良品を「{good}」と判定"),
    "pf.overkill_long": ("Overkill: '{good}' parts called defective", "過検出: 「{good}」を不良と判定"),
    "pf.defect_type": ("Defect type right, among the defects caught", "検出した不良のうち種類も正解"),
    "pf.at_point_escapes": ("Escapes at the operating point (allowed {rate})", "運用点での見逃し(許容 {rate})"),
    "pf.at_point_overkill": ("Overkill at the operating point (allowed escapes {rate})",
                             "運用点での過検出(見逃し許容 {rate})"),
    "pf.col_measure": ("Pass / fail", "合否"),
    "pf.col_interval": ("95% interval", "95%区間"),
    "pf.col_interval_tuned": ("95% interval (tuned)", "95%区間(調整後)"),
    "pf.title": ("Pass or fail", "合否判定"),
    "pf.help": ("What the line decides first: which defective parts it lets through and which good parts it throws "
                "away. The intervals say how far the true rate may lie from the one measured on these few photos.",
                "ラインがまず決めるのは合否です: どの不良品を流してしまい、どの良品を捨ててしまうか。区間は、"
                "少ない写真で測った率から真の率がどれだけずれうるかを示します。"),
    "pf.point_help": ("Operating point: a part passes when its probability of '{good}' is above {threshold} and it is "
                      "not unknown. The threshold was placed on {n} defective test {n|photo|photos} so that on "
                      "average at most {rate} of defects like them pass (conformal risk control); the marker shows "
                      "what it did on photos it was not placed on.",
                      "運用点: 「{good}」の確率が {threshold} を超え、未知でない品だけを合格にします。このしきい値は"
                      "不良のテスト写真 {n} 枚で、同様の不良の見逃しが平均 {rate} 以下になるよう置いたものです"
                      "(コンフォーマルリスク制御)。印は、しきい値決めに使っていない写真での実測です。"),
    "pf.point_name": ("Operating point (escapes ≤ {rate})", "運用点(見逃し ≤ {rate})"),
    "pf.curve_title": ("Fewer escapes cost more good parts", "見逃しを減らすほど良品が止まる"),
    "pf.curve_x": ("Defective parts let through (escapes)", "流出する不良品(見逃し)"),
    "pf.curve_y": ("Good parts stopped (overkill)", "止まる良品(過検出)"),
    "pf.curve_hover": ("escapes %{{x:.1f}}% · overkill %{{y:.1f}}%", "見逃し %{{x:.1f}}% · 過検出 %{{y:.1f}}%"),
    "pf.none": ("No class of this project means a good part, so there is no pass/fail decision: only accuracy. "
                "Set the good class on the Projects page.",
                "このプロジェクトには良品を表すクラスがないため、合否判定はなく正解率のみです。"
                "プロジェクトページで良品クラスを設定してください。"),
    "pf.verdict_pass": ("PASS", "合格"),
    "pf.verdict_fail": ("FAIL", "不合格"),
    "pf.verdict_line": ("{verdict}: P({good}) {p} (passes above {threshold})",
                        "{verdict}: P({good}) {p}(合格は {threshold} 超)"),
    "pf.good_class": ("Which class means a good part?", "良品を表すクラスはどれですか?"),
    "pf.good_class_help": ("Escapes and overkill are counted against it, and the pass threshold is placed for it. "
                           "Choose 'none' for a task without a pass/fail decision.",
                           "見逃しと過検出はこのクラスを基準に数え、合格しきい値もこのクラスに置きます。"
                           "合否判定のない課題では「なし」を選んでください。"),
    "pf.good_none": ("None (no pass/fail)", "なし(合否判定なし)"),
    "pf.good_guessed": ("Guessed from the class names; confirm or change it.", "クラス名から推測しました。確認または変更してください。"),
    "pf.good_saved": ("Good class saved: {name}.", "良品クラスを保存しました: {name}。"),
    "pf.zero_shot_was": ("zero-shot: {value}", "ゼロショット: {value}"),
    "common.points": ("{value} pt", "{value} ポイント"),
    "inspect.accuracy_chance": ("Share of test photos whose class is right (zero-shot {before}; guessing would get "
                                "{chance}).",
                                "クラスが正しく判定されたテスト写真の割合(ゼロショット {before}、当てずっぽうなら {chance})。"),
    "report.chance": ("Chance level", "偶然の水準"),
    "pf.col_verdict": ("Verdict", "判定"),
    "pf.col_good_probability": ("P(good)", "P(良品)"),
    "pf.try_escape_rate": ("Allowed escapes (defective parts let through)", "許容する見逃し(流出する不良品の割合)"),
    "pf.try_escape_rate_help": ("The prompt file's operating point is placed for {rate}; try another rate here to see "
                                "what it costs. The file itself keeps its own.",
                                "プロンプトファイルの運用点は {rate} で置かれています。ここで別の率を試すと、その代償が"
                                "わかります。ファイル自体は変わりません。"),
    "pf.try_point": ("A part passes when P({good}) is above {threshold} and it is not unknown: at most {rate} escapes "
                     "for defects like the test photos, stopping {overkill} of the {n} good test photos.",
                     "P({good}) が {threshold} を超え、未知でない品が合格です。テスト写真のような不良の見逃しは {rate} 以下、"
                     "良品のテスト写真 {n} 枚のうち {overkill} が止まります。"),
    "pf.good_confirm": ("Confirm", "確定"),
    "pf.tune_no_good": ("No class is marked as the good part, so this run counts accuracy only (no escapes, overkill "
                        "or pass threshold). Set it on the Projects page.",
                        "良品クラスが設定されていないため、この実行は正解率だけを数えます(見逃し・過検出・合格しきい値なし)。"
                        "プロジェクトページで設定してください。"),
    "pf.tune_escape_rate": ("Allowed escapes, % of defective parts passed as '{good}'",
                            "許容する見逃し(「{good}」として合格する不良品の%)"),
    "pf.tune_escape_rate_help": ("After tuning, the pass threshold is placed on the test photos so that at most this "
                                 "share of defective parts like them pass; the result shows what it costs in good "
                                 "parts stopped.",
                                 "調整後、テスト写真を使って、同様の不良品の合格がこの割合以下になるよう合格しきい値を置きます。"
                                 "その代償(止まる良品の割合)は結果に表示されます。"),
    "story.chance": (" (guessing would get {chance})", "(当てずっぽうなら {chance})"),
    "story.lost": ("Lost accuracy: {classes}.", "正解率が下がったクラス: {classes}。"),
    # ------------------------------------------------------------------ run health (engine/run_health.py)
    "safeguard.switched_method": ("{asked}'s class texts collapsed onto one point in its first epochs, so {method} "
                                  "was tuned instead (text prompt only); the file holds {method}.",
                                  "{asked} のクラス文章埋め込みが最初のエポックで一点に崩壊したため、代わりに {method}"
                                  "(テキストプロンプトのみ)で調整しました。ファイルには {method} が入っています。"),
    "safeguard.zero_shot": ("Tuning collapsed (tried: {tried}): the class texts fell onto one point. The file holds "
                            "the zero-shot classifier instead, the untuned model.",
                            "調整が崩壊しました(試したもの: {tried}): クラスの文章埋め込みが一点に集まりました。"
                            "ファイルには代わりにゼロショット分類器(調整前のモデル)が入っています。"),
    "health.no_gain": ("Tuning did not beat zero-shot on the held-out photos: the file still works, but tuning "
                       "added nothing here.",
                       "テスト写真では調整がゼロショットを上回りませんでした。ファイルは使えますが、この課題では調整の効果がありません。"),
    "health.collapsed": ("Tuning collapsed: the class texts moved into one point and the model no longer tells the "
                         "classes apart. Do not use this run on a line.",
                         "調整が崩壊しました: クラスの文章埋め込みが一点に集まり、クラスを区別できなくなっています。"
                         "この実行をラインで使わないでください。"),
    "health.at_chance": ("This run is no better than guessing on the held-out photos. Do not use it on a line.",
                         "この実行はテスト写真で当てずっぽうと変わりません。ラインで使わないでください。"),
    # ------------------------------------------------------------------ dispersion table
    "disp.col_measure": ("Measure", "指標"),
    "disp.col_before": ("Before", "調整前"),
    "disp.col_after": ("After", "調整後"),
    "disp.col_change": ("Change", "変化"),
    "disp.col_verdict": ("", ""),
    "disp.col_meaning": ("What it means", "意味"),
    "disp.better": ("✓ better", "✓ 改善"),
    "disp.worse": ("✗ worse", "✗ 悪化"),
    "disp.same": ("≈ unchanged", "≈ 変化なし"),
    # the caption above the table, by the run's method: only DAPT has losses aimed at these numbers
    "disp.caption.dapt": ("Measured on the embeddings of the held-out photos. DAPT's two extra losses push, on the "
                          "training photos, towards a smaller spread within each class and a larger distance between "
                          "classes; the table shows what that did on photos it never trained on.",
                          "学習に使っていない写真の埋め込みで測定しています。DAPT の2つの追加の損失は、学習用の写真で"
                          "クラス内のばらつきを小さく、クラス間の距離を大きくするよう働きます。表は、それが学習に"
                          "使っていない写真でどうなったかを示します。"),
    "disp.caption.coop": ("Measured on the embeddings of the held-out photos. {method} tunes only the text prompt, "
                          "with no loss aimed at these numbers: the photos' embeddings stay where they were, and only "
                          "the distance between the class descriptions can change.",
                          "学習に使っていない写真の埋め込みで測定しています。{method} はテキストプロンプトだけを調整し、"
                          "これらの数値を狙う損失はありません。写真の埋め込みは変わらず、変わりうるのはクラスの説明文"
                          "どうしの距離だけです。"),
    "disp.caption.vpt": ("Measured on the embeddings of the held-out photos. {method} tunes only the image side, with "
                         "no loss aimed at these numbers: the table shows how the photos moved as a side effect; the "
                         "class descriptions stay as they were.",
                         "学習に使っていない写真の埋め込みで測定しています。{method} は画像側だけを調整し、これらの"
                         "数値を狙う損失はありません。表は写真が副次的にどう動いたかを示します。クラスの説明文は"
                         "変わりません。"),
    "disp.caption.zeroshot": ("Measured on the embeddings of the held-out photos. {method} trains nothing, so before "
                              "and after are the same.",
                              "学習に使っていない写真の埋め込みで測定しています。{method} は何も学習しないため、"
                              "調整前と調整後は同じです。"),
    "disp.caption.other": ("Measured on the embeddings of the held-out photos. {method} has no loss aimed at these "
                           "numbers: the table shows how tuning moved the photos as a side effect.",
                           "学習に使っていない写真の埋め込みで測定しています。{method} にはこれらの数値を狙う損失は"
                           "ありません。表は調整によって写真が副次的にどう動いたかを示します。"),
    # the sentence under the table, built from this run's changes (ui.narrative.dispersion_summary)
    "disp.summary.moved": ("After tuning, {within} and {between}.", "調整後、{within}、{between}。"),
    "disp.within.closer": ("photos of one class sit closer together", "同じクラスの写真どうしが近づき"),
    "disp.within.same": ("the spread within each class hardly changed", "クラス内のばらつきはほぼ変わらず"),
    "disp.within.spread": ("photos of one class are more spread out", "同じクラスの写真がばらつくようになり"),
    "disp.between.apart": ("the classes lie further apart", "クラスどうしは離れました"),
    "disp.between.same": ("the distance between the classes hardly changed", "クラス間の距離はほぼ変わりませんでした"),
    "disp.between.closer": ("the classes moved closer together", "クラスどうしは近づきました"),
    "disp.summary.unmoved": ("Tuning hardly changed how the photos lie relative to each other.",
                             "調整しても、写真どうしの位置関係はほとんど変わりませんでした。"),
    "disp.summary.easier": ("By distance alone, the classes are easier to tell apart than before (separation "
                            "{change}).",
                            "距離だけで見ると、クラスは以前より見分けやすくなりました(分離度 {change})。"),
    "disp.summary.harder": ("By distance alone, the classes are harder to tell apart than before (separation "
                            "{change}): that is what \"worse\" means here.",
                            "距離だけで見ると、クラスは以前より見分けにくくなりました(分離度 {change})。表の「悪化」は"
                            "この意味です。"),
    "disp.summary.worse_but_accurate": ("Accuracy still rose ({before} → {after}): a photo is classified by the class "
                                        "description it lies nearest to, not by how tight the clusters are.",
                                        "それでも正解率は上がりました({before} → {after})。写真は最も近いクラスの"
                                        "説明文で判定され、まとまり具合では判定されないためです。"),
    "disp.summary.better_but_less_accurate": ("Accuracy still fell ({before} → {after}): the classes drew apart, but "
                                              "their photos did not move nearer their own class descriptions.",
                                              "それでも正解率は下がりました({before} → {after})。クラスどうしは分かれ"
                                              "ましたが、写真が自分のクラスの説明文に近づいたわけではありません。"),
    "disp.summary.what_counts": ("These numbers describe how the photos lie, not how well parts are judged: the "
                                 "accuracy and the pass/fail numbers on the held-out photos are what count.",
                                 "これらは写真の並び方を表す数値で、部品の判定の良し悪しではありません。大事なのは、"
                                 "学習に使っていない写真での正解率と合否の数字です。"),
    "disp.intra": ("Intra-dispersion", "クラス内分散"),
    "disp.intra_help": ("Spread of the images within a class (lower: photos of one class sit closer together)",
                        "クラス内の画像のばらつき(小さいほど同じクラスの写真がまとまっている)"),
    "disp.inter": ("Inter-dispersion", "クラス間分散"),
    "disp.inter_help": ("Distance between the class centres (higher: classes lie further apart)",
                        "クラス中心どうしの距離(大きいほどクラスが離れている)"),
    "disp.ratio": ("Separation (inter ÷ intra)", "分離度(クラス間 ÷ クラス内)"),
    "disp.ratio_help": ("One number for how easy the classes are to tell apart (higher is better)",
                        "クラスの見分けやすさを表す1つの数値(大きいほど良い)"),
    "disp.text_inter": ("Text inter-dispersion", "テキストのクラス間分散"),
    "disp.text_inter_help": ("Distance between the class descriptions (higher: descriptions further apart)",
                             "クラスの説明文どうしの距離(大きいほど離れている)"),
    # ------------------------------------------------------------------ settings rows
    "settings.method": ("Method", "手法"),
    "settings.backbone": ("Backbone", "バックボーン"),
    "settings.weights": ("Weights", "重み"),
    "settings.shots": ("Training images per class", "1クラスあたりの学習用画像数"),
    "settings.epochs": ("Epochs", "エポック数"),
    "settings.lr": ("Learning rate", "学習率"),
    "settings.augmentation": ("Training augmentation", "学習時のデータ拡張"),
    "settings.augmentation_turns": ("{preset}, 90° turns", "{preset}、90°回転あり"),
    "settings.beta_v": ("β visual", "β 画像"),
    "settings.beta_t": ("β text", "β テキスト"),
    "settings.n_ctx": ("Text prompt length", "テキストプロンプト長"),
    "settings.n_vis": ("Visual prompt length", "画像プロンプト長"),
    "settings.seed": ("Seed", "シード"),
    "settings.device": ("Device", "デバイス"),
    "settings.device.cpu": ("CPU", "CPU"),
    "settings.device.cuda": ("GPU (CUDA)", "GPU(CUDA)"),
    "settings.device.mps": ("Apple GPU (MPS)", "Apple の GPU(MPS)"),
    "settings.train_time": ("Training time", "学習時間"),
    "settings.created": ("Created", "作成日時"),
    # ------------------------------------------------------------------ export page
    "export.title": ("Export", "エクスポート"),
    "export.prompt_title": ("Prompt file", "プロンプトファイル"),
    "export.prompt_help": ("The tuned prompts and class embeddings in one safetensors file, with the backbone, class "
                           "list, settings and metrics in its header. A production line loads it with the snippet below.",
                           "学習したプロンプトとクラス埋め込みを1つの safetensors ファイルにまとめたものです。"
                           "ヘッダーにバックボーン、クラス一覧、設定、指標が入っています。生産ラインでは下の"
                           "コードで読み込めます。"),
    "export.prompt_download": ("Download the prompt file", "プロンプトファイルをダウンロード"),
    "export.prompt_size": ("{kb} KB", "{kb} KB"),
    "export.report_title": ("Report for managers", "管理者向けレポート"),
    "export.report_help": ("One HTML page with the maps, tables, settings and a data summary; it opens offline in any "
                           "browser.",
                           "マップ、表、設定、データ概要をまとめた1枚のHTMLページです。オフラインでも"
                           "どのブラウザでも開けます。"),
    "export.report_download": ("Download the HTML report", "HTMLレポートをダウンロード"),
    "export.snippet_title": ("Use it from Python", "Pythonから使う"),
    "export.snippet_help": ("Copy this into a script on the machine that classifies the parts.",
                            "部品を判定するマシンのスクリプトにコピーしてください。"),
    "export.snippet": ("# Needs dapt_core (this project: pip install -e .) and the weights of the\n"
                       "# backbone the file was tuned on: '{spec}'.\n"
                       "from dapt_core import Classifier\n\n"
                       "# The file names its backbone; load() loads it with the prompts.\n"
                       "classifier = Classifier.load(\"{file}\")\n"
                       "for prediction in classifier.predict([\"part-0001.jpg\", \"part-0002.jpg\"]):\n"
                       "    # verdict: \"pass\" or \"fail\" at the file's operating point (None: no good class)\n"
                       "    if prediction.unknown:  # unlike the training photos: its score means nothing\n"
                       "        print(prediction.verdict, \"UNKNOWN: check the part by hand; closest class\", prediction.label)\n"
                       "    else:\n"
                       "        print(prediction.verdict, prediction.label, f\"{{prediction.score:.1%}}\")\n",
                       "# dapt_core(このプロジェクト: pip install -e .)と、調整に使った\n"
                       "# バックボーン '{spec}' の重みが必要です。\n"
                       "from dapt_core import Classifier\n\n"
                       "# ファイルに記録されたバックボーンをプロンプトと一緒に読み込みます。\n"
                       "classifier = Classifier.load(\"{file}\")\n"
                       "for prediction in classifier.predict([\"part-0001.jpg\", \"part-0002.jpg\"]):\n"
                       "    # verdict: ファイルの運用点での \"pass\"(合格)か \"fail\"(不合格)。良品クラスがなければ None\n"
                       "    if prediction.unknown:  # 学習写真と似ていない: スコアに意味はない\n"
                       "        print(prediction.verdict, \"未知: 部品を目視で確認。最も近いクラス\", prediction.label)\n"
                       "    else:\n"
                       "        print(prediction.verdict, prediction.label, f\"{{prediction.score:.1%}}\")\n"),
    "export.line_title": ("For the inspection line", "検査ラインで使う"),
    "export.line_help": ("Try the model on a few photos before exporting. Each photo gets a class and a calibrated "
                         "confidence, or \"unknown\" when it is unlike the training photos (then no confidence is "
                         "given: the model has not seen anything like it). On a line, \"I don't know\" is better "
                         "than a wrong confident answer.",
                         "エクスポートの前に数枚の写真で試してください。各写真にクラスと校正済みの確信度が付きます。"
                         "学習写真と似ていない写真は「未知」となり、確信度は表示しません(モデルが似たものを見たこと"
                         "がないため)。ラインでは、自信満々の誤答より「わからない」の方が安全です。"),
    "export.line_uncalibrated": ("This run has no calibration (it had fewer than {n} test photos), so there is no "
                                 "\"unknown\" flag and no prediction set. Keep more photos out of training to get them.",
                                 "この実行結果には校正がありません(テスト写真が {n} 枚未満)。そのため「未知」の印も"
                                 "予測集合もありません。学習に使わない写真を増やすと得られます。"),
    "export.line_calibration": ("Unknown: novelty above {threshold}, chosen to flag at most {rate} of photos like the "
                                "{n} test photos (measured: {measured}). Prediction sets at {coverage}: measured "
                                "coverage {covered}, {size} classes on average.",
                                "未知: 新規性スコアが {threshold} を超えるもの。テスト写真 {n} 枚と同様の写真のうち"
                                "印が付くのは最大 {rate} になるよう選択(実測: {measured})。被覆率 {coverage} の予測集合: "
                                "実測の被覆率 {covered}、平均 {size} クラス。"),
    "export.try_upload": ("Photos to try", "試す写真"),
    "export.try_coverage": ("Coverage of the prediction set", "予測集合の被覆率"),
    "export.try_skipped": ("{name} was skipped: {reason}", "{name} はスキップされました: {reason}"),
    "export.col_result": ("Result", "判定"),
    "export.col_confidence": ("Confidence", "確信度"),
    "export.col_set": ("Prediction set", "予測集合"),
    "export.unknown_result": ("Unknown: unlike the training photos (closest class: {cls})",
                              "未知: 学習写真と異なる(最も近いクラス: {cls})"),
    "export.unknown_note": ("Check the parts of unknown photos by hand: the model has seen nothing like them, so it "
                            "gives them no class and no confidence.",
                            "未知の写真の部品は目視で確認してください。モデルは似たものを見たことがないため、"
                            "クラスも確信度も出しません。"),
    "export.onnx_title": ("ONNX for a line PC without Python", "Python のないライン PC 向け ONNX"),
    "export.onnx_help": ("One graph with the prompts and class embeddings baked in, plus a JSON file with the "
                         "preprocessing, class names and unknown threshold. ONNX Runtime runs it from C#, C++, Java "
                         "or Python, without torch.",
                         "プロンプトとクラス埋め込みを組み込んだ1つのグラフと、前処理・クラス名・未知のしきい値を"
                         "記したJSONファイルです。ONNX Runtime で C#、C++、Java、Python から torch なしで実行できます。"),
    "export.onnx_prepare": ("Make the ONNX export", "ONNX を作成"),
    "export.onnx_download": ("Download the ZIP with {files}", "{files} を含む ZIP をダウンロード"),
    "export.bench_title": ("Will the line PC keep up?", "ライン PC の処理は間に合うか"),
    "export.bench_help": ("Milliseconds per photo at batch 1 (one photo at a time) and 32 (a folder), and peak memory, "
                          "for torch and ONNX, measured on this machine, each in a fresh process (up to a minute).",
                          "バッチ1(1枚ずつ)と32(フォルダ単位)での1枚あたりのミリ秒とピークメモリを、torch と ONNX "
                          "それぞれ新しいプロセスでこのマシン上で計測します(最大1分ほど)。"),
    "export.bench_run": ("Measure on this machine", "このマシンで計測"),
    "export.bench_engine": ("Engine", "エンジン"),
    "export.bench_batch": ("Batch", "バッチ"),
    "export.bench_ms": ("ms per photo", "1枚あたり ms"),
    "export.bench_fps": ("Photos per second", "毎秒の枚数"),
    "export.bench_memory": ("Peak memory (MB)", "ピークメモリ (MB)"),
    "export.bench_failed": ("{engine}: {error}", "{engine}: {error}"),
    "export.import_title": ("Import a prompt file and score it on this project", "プロンプトファイルを取り込み、このプロジェクトで評価"),
    "export.import_help": ("Images the file was tuned on are left out of the score. Class names are matched by name.",
                           "ファイルの学習に使われた画像は評価から除外されます。クラスは名前で対応付けます。"),
    "export.import_upload": ("Prompt file (.safetensors)", "プロンプトファイル(.safetensors)"),
    "export.import_bad": ("{name} cannot be used as a prompt file:", "{name} はプロンプトファイルとして使えません:"),
    "export.import_summary": ("**{name}** — {method} on `{backbone}`, created {created}; classes: {classes}. "
                              "Its own measurement: {before} zero-shot → {after} tuned.",
                              "**{name}** — {method}、`{backbone}`、作成 {created}。クラス: {classes}。"
                              "作成時の測定: ゼロショット {before} → 調整後 {after}。"),
    "export.classes_match": ("The file's classes are exactly this project's classes.",
                             "ファイルのクラスはこのプロジェクトのクラスと完全に一致しています。"),
    "export.classes_case": ("These classes differ only in letter case and are treated as the same: {pairs}.",
                            "次のクラスは大文字・小文字だけが異なるため同じものとして扱います: {pairs}。"),
    "export.classes_only_file": ("The file knows classes this project does not have: {classes}. It can still predict "
                                 "them, so some images may be assigned to them.",
                                 "ファイルにはこのプロジェクトにないクラスがあります: {classes}。予測には使われる"
                                 "ため、画像がそのクラスに判定されることがあります。"),
    "export.classes_only_project": ("This project has classes the file cannot predict: {classes}. Their images are "
                                    "left out of the score.",
                                    "このプロジェクトにはファイルが予測できないクラスがあります: {classes}。"
                                    "それらの画像は評価から除外します。"),
    "export.no_common_classes": ("The file and this project have no class in common, so there is nothing to score. "
                                 "Rename the classes to match, or open the project it was made for.",
                                 "ファイルとこのプロジェクトに共通のクラスがないため評価できません。クラス名を"
                                 "合わせるか、作成元のプロジェクトを開いてください。"),
    "export.backbone_missing": ("The file was tuned on '{spec}', whose weights are not available here: {message}",
                                "このファイルは '{spec}' で調整されましたが、その重みはここでは使えません: {message}"),
    "export.backbone_mismatch": ("The backbone here is not the one the file was tuned on: {message}",
                                 "ここにあるバックボーンはファイルの調整に使われたものと異なります: {message}"),
    "export.evaluate": ("Score it on this project's images", "このプロジェクトの画像で評価"),
    "export.import_clear": ("Forget this file", "このファイルを閉じる"),
    "export.eval_done": ("{name}: accuracy on {n} {n|image|images} {before} zero-shot → {after} with the file's prompts.",
                         "{name}: {n} 枚での正解率 ゼロショット {before} → ファイルのプロンプト使用時 {after}。"),
    "export.eval_excluded": ("{n} {n|image|images} were left out because the file was tuned on them.",
                             "ファイルの学習に使われた {n} 枚は除外しました。"),
    "export.eval_other_class": ("{n} {n|image|images} of class '{cls}' were left out: the file has no such class.",
                                "クラス「{cls}」の {n} 枚は除外しました(ファイルにそのクラスがありません)。"),
    "export.eval_mismatches": ("**{n} {n|image|images} disagree with their class:**", "**クラスと一致しなかった画像 {n} 枚:**"),
    "export.eval_no_mismatch": ("Every image was classified as its class.", "すべての画像が正しいクラスに判定されました。"),
    # ------------------------------------------------------------------ report
    "report.title": ("DAPT Studio report — {project}", "DAPT Studio レポート — {project}"),
    "report.subtitle": ("Run {run} · {created} · {method} on {backbone}", "実行 {run} · {created} · {method}({backbone})"),
    "report.shots": ("Training photos per class", "1クラスあたりの学習用写真"),
    "report.mistakes": ("Misclassified test images ({n}; {shown} shown)", "誤分類されたテスト画像({n} 枚中 {shown} 枚を表示)"),
    "report.mistakes_help": ("Tuning fixed {fixed} {fixed|image|images} that zero-shot CLIP got wrong and got {broken} wrong that it "
                             "had right.",
                             "調整により、ゼロショットで誤っていた {fixed} 枚が正解になり、正解だった {broken} 枚が誤りになりました。"),
    "report.line_title": ("For the inspection line: unknown photos and prediction sets",
                          "検査ラインで使う: 未知の写真と予測集合"),
    "report.line_help": ("Fitted on the {n} test photos and counted on them two-fold (calibrated on one half, "
                         "counted on the other, then the other way round), so the rates are out of sample. A photo is "
                         "\"unknown\" when its novelty (how unlike the training photos it is) is above the threshold; "
                         "a prediction set holds the true class with the stated probability for photos like these.",
                         "テスト写真 {n} 枚で校正し、同じ写真で2分割して数えました(半分で校正し残り半分で数え、"
                         "次に逆にする)ので、率はサンプル外の値です。新規性スコア(学習写真と似ていない度合い)が"
                         "しきい値を超える写真は「未知」になります。予測集合は、このような写真について記載の確率で"
                         "正しいクラスを含みます。"),
    "report.line_measure": ("Measure", "項目"),
    "report.line_temperature": ("Temperature T (calibrated probability = softmax(logits / T))",
                                "温度 T(校正済み確率 = softmax(logits / T))"),
    "report.line_threshold": ("Unknown when novelty is above", "新規性スコアがこれを超えると未知"),
    "report.line_unknown_rate": ("Test photos flagged unknown (stated false-reject rate {rate})",
                                 "未知と判定されたテスト写真(記載の誤棄却率 {rate})"),
    "report.line_coverage": ("Prediction sets at {coverage}: measured coverage",
                             "被覆率 {coverage} の予測集合: 実測の被覆率"),
    "report.line_set_size": ("Prediction sets at {coverage}: average size (of {classes} classes)",
                             "被覆率 {coverage} の予測集合: 平均の大きさ({classes} クラス中)"),
    "report.settings": ("Settings", "設定"),
    "report.setting": ("Setting", "項目"),
    "report.value": ("Value", "値"),
    "report.data": ("Data", "データ"),
    "report.data_help": ("Training images were drawn at random (seeded) per class. A class's test images are its own "
                         "test/ pictures where it has them (from a ZIP or the demo task), otherwise the pictures not "
                         "drawn, at least half of the class. Files not used: {skipped}.",
                         "学習用画像は各クラスからランダム(シード固定)に選びました。テスト画像は、そのクラスに"
                         "test/ の画像(ZIPまたはデモ課題)があればそれを、なければ選ばれなかった画像(クラスの半分以上)"
                         "を使いました。使われなかったファイル: {skipped} 個。"),
    "report.footer": ("Made with DAPT Studio {version} on {when}. Distribution-Aware Prompt Tuning (Cho, Kim, Kim, "
                      "ICCV 2023).",
                      "DAPT Studio {version} で {when} に作成。Distribution-Aware Prompt Tuning(Cho, Kim, Kim, ICCV 2023)。"),
    # ------------------------------------------------------------------ errors (workspace codes)
    "error.engine": ("{message}", "エラー: {message}"),
    "error.project_not_found": (ERRORS["project_not_found"],
                                "プロジェクト '{project}' はありません。別のウィンドウで削除された可能性があります。"),
    "error.manifest_damaged": (ERRORS["manifest_damaged"],
                               "プロジェクトのマニフェスト {path} が破損しています({detail})。ファイルはそのまま"
                               "残してあり、上書きしていません。下のボタンでバックアップを復元するか、手で修正するか、"
                               "プロジェクトを削除してください。"),
    "error.no_backup": (ERRORS["no_backup"], "復元できるバックアップのマニフェストがありません。"),
    "error.backup_damaged": (ERRORS["backup_damaged"], "バックアップのマニフェストも破損しています({detail})。"),
    "error.project_exists": (ERRORS["project_exists"],
                             "「{name}」という名前のプロジェクトは既にあります。別の名前にしてください。"),
    "error.project_name_empty": (ERRORS["project_name_empty"], "プロジェクト名を入力してください。"),
    "error.class_exists": (ERRORS["class_exists"], "「{name}」という名前のクラスは既にあります。"),
    "error.class_name_empty": (ERRORS["class_name_empty"],
                               "クラス名を入力してください(例: 'scratch'、'no defect')。"),
    "error.class_name_long": (ERRORS["class_name_long"],
                              "クラス名は {limit} 文字までです。CLIPは短い文の中でこの名前を読みます。"),
    "error.class_not_found": (ERRORS["class_not_found"],
                              "このプロジェクトにクラス「{name}」はありません(別のウィンドウで名前が変更された可能性があります)。"),
    "error.need_two_classes": (ERRORS["need_two_classes"],
                               "課題には2つ以上のクラスが必要です。このプロジェクトには {count} 個しかありません。"
                               "「プロジェクトとデータ」ページでクラスを追加してください。"),
    "error.empty_class": (ERRORS["empty_class"],
                          "クラス「{name}」に画像がありません。画像をアップロードするか、クラスを削除してください。"),
    "error.class_no_train": (ERRORS["class_no_train"],
                             "クラス「{name}」にはテスト用の画像しかありません。学習用の画像を追加してください。"),
    "error.class_too_small": (ERRORS["class_too_small"],
                              "クラス「{name}」の画像は1枚だけです。学習用と測定用に最低2枚必要です。画像を追加してください。"),
    "error.bad_image_id": (ERRORS["bad_image_id"], "このプロジェクトの画像ではありません。"),
    "error.run_not_found": (ERRORS["run_not_found"], "このプロジェクトに実行結果 '{run}' はありません。"),
    "error.run_damaged": (ERRORS["run_damaged"],
                          "実行結果 {run} を読み込めません({detail})。「調整」ページで削除してください。"),
    "error.zip_bad": (ERRORS["zip_bad"], "{name} は読み込めるZIPアーカイブではありません。"),
    "error.zip_no_classes": (ERRORS["zip_no_classes"],
                             "{name} にクラスのフォルダがありません。クラスごとに、クラス名のフォルダへ画像を入れて"
                             "ZIPにしてください。"),
    "error.zip_too_many": (ERRORS["zip_too_many"],
                           "アーカイブに {count} 個の項目があります。読み込めるのは {limit} 個までです。分割してください。"),
    "error.zip_total_too_big": (ERRORS["zip_total_too_big"],
                                "アーカイブの展開後のサイズが {limit_gb} GB を超えます。分割してください。"),
}


def join_sentences(sentences, lang: str | None = None) -> str:
    """Sentences in a row: a space between English ones, none between Japanese ones (which end in 。)."""
    gap = "" if (lang or current_language()) == "ja" else " "
    return gap.join(s.strip() for s in sentences if s)


def current_language() -> str:
    try:
        import streamlit as st

        lang = st.session_state.get(LANG_KEY)
        if lang not in LANGUAGES:
            lang = st.query_params.get("lang")
        return lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    except Exception:  # outside a Streamlit run (library tests, report scripts)
        return DEFAULT_LANGUAGE


# "{n|image|images}" in a template: the first word when the parameter n is 1, else the second.
_PLURAL = re.compile(r"\{(\w+)\|([^|{}]*)\|([^|{}]*)\}")


def _plurals(template: str, params: dict) -> str:
    return _PLURAL.sub(lambda m: m.group(2) if params.get(m.group(1)) in (1, "1") else m.group(3), template)


def t(key: str, lang: str | None = None, **params) -> str:
    """The string `key` in `lang` (default: the session's), with `params` filled in."""
    lang = lang if lang in LANGUAGES else current_language()
    entry = STRINGS.get(key)
    if entry is None:
        return key  # a missing key shows itself instead of crashing a page (tests catch it)
    template = _plurals(entry[list(LANGUAGES).index(lang)] or entry[0], params)
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return _plurals(entry[0], params).format_map(_Lenient(params))


class _Lenient(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def error_text(error: BaseException, lang: str | None = None) -> str:
    """A user-facing message for an error: translated when it has a known code, else its text."""
    code = getattr(error, "code", None)
    if code and f"error.{code}" in STRINGS:
        return t(f"error.{code}", lang=lang, **(getattr(error, "params", None) or {}))
    return t("error.engine", lang=lang, message=str(error))


def skipped_reason(skipped, lang: str | None = None) -> str:
    """The reason a file was not used, translated where the workspace gave a code."""
    key = f"skip.{skipped.code}"
    if key in STRINGS:
        return t(key, lang=lang, **{"reason": engine_text(skipped.reason, lang), **(skipped.params or {})})
    return skipped.reason


# The image checks' reasons (dapt_core.data.images) and the split's notes (dapt_core.data.folders), which
# carry no code: recognised by their wording.
# A decoder's own detail ({detail}) is passed on as it is.
_ENGINE_REASONS = [(re.compile(pattern), key) for pattern, key in (
    (r"is a folder, not an image file", "reason.folder"),
    (r"file not found", "reason.not_found"),
    (r"cannot read file: (?P<detail>.*)", "reason.unreadable"),
    (r"empty file", "reason.empty"),
    (r"too large: (?P<w>\d+)x(?P<h>\d+) pixels exceeds the limit of (?P<limit>[\d,]+); downscale it",
     "reason.too_large_wh"),
    (r"too large: (?P<n>[\d,]+) pixels exceeds the limit of (?P<limit>[\d,]+); downscale it", "reason.too_large_n"),
    (r"too large: the image exceeds the limit of (?P<limit>[\d,]+); downscale it", "reason.too_large"),
    (r"corrupt image: (?P<detail>.*)", "reason.corrupt"),
    (r"truncated or corrupt (?P<format>\S+): (?P<detail>.*)", "reason.truncated"),
    (r"image has no pixels", "reason.no_pixels"),
    (r"unsupported colour mode (?P<mode>.*)", "reason.colour_mode"),
    (r"corrupt (?P<format>.+) file: its header cannot be read", "reason.bad_header"),
    (r"unsupported format (?P<format>.+); save it as (?P<formats>.+)", "reason.unsupported"),
    (r"not an image \(looks like a web page saved under an image name\)", "reason.web_page"),
    (r"not an image \(looks like a text file\)", "reason.text_file"),
    (r"not an image, or not a supported format \((?P<formats>.+)\)", "reason.unknown_format"),
    # how the training photos were drawn (dapt_core.data.folders), shown as notes
    (r"class '(?P<cls>.+)' has (?P<n>\d+) images?: (?P<k>\d+) of them train and the rest are kept for testing "
     r"\(at most half of a class trains when it has no test images of its own\)", "note.half_trains"),
    (r"class '(?P<cls>.+)' has only (?P<n>\d+) training images?, fewer than the (?P<shots>\d+) shots asked; all of "
     r"them are used", "note.fewer_than_shots"),
    (r"no test images for any class, so accuracy cannot be measured", "note.no_test"),
    (r"no test images for any class, so accuracy cannot be measured \(without a shots number every image is used "
     r"for training\)", "note.no_test_no_shots"),
    (r"class '(?P<cls>.+)' has no test images, so its accuracy cannot be measured", "note.class_no_test"),
)]


def engine_text(reason: str, lang: str | None = None) -> str:
    """An image check's reason or a split's note, in `lang` (the English as it is; one not recognised too)."""
    lang = lang if lang in LANGUAGES else current_language()
    if lang == DEFAULT_LANGUAGE or not reason:
        return reason
    for pattern, key in _ENGINE_REASONS:
        found = pattern.fullmatch(reason)
        if found:
            params = found.groupdict()
            if "formats" in params:  # "JPEG, PNG, WebP, GIF, BMP or TIFF": a Japanese list has no "or"
                params["formats"] = re.sub(r",\s*|\s+or\s+", "、", params["formats"])
            return t(key, lang=lang, **params)
    return reason


def streamlit_words_css(lang: str, upload_limit_mb: int) -> str:
    """CSS that shows Streamlit's own built-in words (the file uploader's button and size limit,
    the "Press Enter" hint under text fields) in `lang`; empty for English, which they already are.

    Streamlit offers no parameter or setting for these words (streamlit/streamlit#13500), so
    the English text is shrunk to nothing and the translation drawn in its place."""
    if lang == DEFAULT_LANGUAGE:
        return ""
    replaced = {
        '[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p':
            t("streamlit.upload", lang=lang),
        '[data-testid="stFileUploaderDropzoneInstructions"] span':
            t("streamlit.upload_limit", lang=lang, mb=upload_limit_mb),
        '[data-testid="InputInstructions"]': t("streamlit.press_enter", lang=lang),
    }
    rules = [f"{selector}{{font-size:0 !important}}"
             f"{selector}::after{{content:\"{text}\";font-size:14px}}" for selector, text in replaced.items()]
    # The full-screen button Streamlit adds to every chart's mode bar: its tooltip is Plotly's
    # [data-title]::after, whose text is replaced (Plotly's own buttons: ui.charts.plotly_config).
    for title, key in (("Fullscreen", "streamlit.fullscreen"), ("Close fullscreen", "streamlit.close_fullscreen")):
        rules.append(f'.js-plotly-plot .plotly .modebar-btn[data-title="{title}"]::after'
                     f'{{content:"{t(key, lang=lang)}" !important}}')
    return "<style>" + "".join(rules) + "</style>"


def language_switch(container) -> None:
    """The sidebar language switch. The choice lives in a plain session key (which survives page
    changes, unlike a widget's own state) and in the URL (which survives a refresh)."""
    import streamlit as st

    if st.session_state.get(LANG_KEY) not in LANGUAGES:
        wanted = st.query_params.get("lang")
        st.session_state[LANG_KEY] = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE

    def _chosen():
        picked = st.session_state.get(SWITCH_KEY)
        if picked in LANGUAGES:  # a click on the selected option empties the control: keep the language
            st.session_state[LANG_KEY] = picked

    st.session_state[SWITCH_KEY] = st.session_state[LANG_KEY]
    container.segmented_control(STRINGS["lang.label"][0], list(LANGUAGES), format_func=LANGUAGES.get, key=SWITCH_KEY,
                                selection_mode="single", on_change=_chosen)
    if st.query_params.get("lang") != st.session_state[LANG_KEY]:
        st.query_params["lang"] = st.session_state[LANG_KEY]
