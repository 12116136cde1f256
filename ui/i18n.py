"""Every user-facing string of the app and the report, in English and Japanese, in one place.

    t("tune.start")                          -> "Start tuning" / "調整を開始"
    t("data.moved", n=3, name="scratch")     -> placeholders are str.format fields

The language is the session's (the sidebar switch; also kept in the URL as ?lang=ja so a
refresh keeps it). Messages of errors raised by dapt_core carry English text. The workspace's errors
and skipped-file reasons have codes: their English is dapt_core.studio.messages' (written once, there)
and their translations are here; the engine's own reasons are shown as they are, after a translated
lead-in.
"""

from __future__ import annotations

import re

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
    # ------------------------------------------------------------------ common
    "common.no_project": ("Open or create a project first.", "まずプロジェクトを開くか作成してください。"),
    "common.no_runs": ("This project has no saved runs yet. Start one on the Tune page.",
                       "このプロジェクトにはまだ保存された実行結果がありません。「調整」ページで開始してください。"),
    "common.project_caption": ("Project: {name}", "プロジェクト: {name}"),
    "common.run": ("Run", "実行結果"),
    "common.run_label": ("{when} · {method} · {backbone} · {shots} per class · {before} → {after}",
                         "{when} · {method} · {backbone} · 1クラス{shots}枚 · {before} → {after}"),
    "common.seconds": ("{s} s", "{s} 秒"),
    "common.class": ("Class", "クラス"),
    "common.train_images": ("Training images", "学習用画像"),
    "common.test_images": ("Test images (held out)", "テスト画像(学習に不使用)"),
    "common.zero_shot": ("Zero-shot", "ゼロショット"),
    "common.tuned": ("Tuned", "調整後"),
    "common.change_points": ("Change (points)", "変化(ポイント)"),
    "tune.test_source": ("Test pictures", "テスト画像の出所"),
    "tune.test_own": ("its test/ folder", "test/ フォルダ"),
    "tune.test_drawn": ("held out at random (seed)", "無作為に取り置き(シード)"),
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
    "projects.empty": ("No projects yet. Create one, or start from the demo task in one click.",
                       "プロジェクトがまだありません。新規作成するか、ワンクリックでデモ課題から始めてください。"),
    "projects.new_name": ("New project", "新しいプロジェクト"),
    "projects.new_placeholder": ("e.g. Bracket line 3 – surface defects", "例: ブラケット3号ライン 表面欠陥"),
    "projects.create": ("Create project", "プロジェクトを作成"),
    "projects.created": ("Project '{name}' created. Add classes and images below.",
                         "プロジェクト「{name}」を作成しました。下でクラスと画像を追加してください。"),
    "projects.demo": ("Start from the demo task", "デモ課題から始める"),
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
                         "sit apart from other colours. Each star is a class description, drawn where the images it "
                         "matches best lie (the images weighted by how strongly CLIP matches them to the "
                         "description). A star inside its own colour's cloud picks out its pictures; a star among "
                         "another colour's dots matches those pictures better; a star between clouds cannot tell "
                         "them apart. Dots near a star are pictures that match its description well; the map keeps "
                         "who is near whom, not exact distances.",
                         "点は学習に使っていないテスト画像で、色は正解クラスです。2つのマップは1回の共通UMAPから"
                         "作られているので位置を比較できます。調整後は同じ色の点が集まり、他の色から離れるのが理想です。"
                         "星印はクラスの説明文で、その説明文に最もよく合う画像の位置に描かれます(CLIPが説明文と"
                         "合うと判断する度合いで画像を重み付けした平均)。星が同じ色の点の中にあれば説明文がその"
                         "クラスの画像を選び出せており、別の色の点の中にあればそちらの画像の方がよく合い、点の群れの"
                         "間にあれば見分けられていないことを示します。星の近くの点は説明文によく合う画像です"
                         "(マップが保つのは近さの関係で、正確な距離ではありません)。"),
    "inspect.map_before": ("Before: CLIP as it is (zero-shot)", "調整前: CLIPそのまま(ゼロショット)"),
    "inspect.map_after": ("After: tuned prompts", "調整後: 学習したプロンプト"),
    "inspect.warming": ("Preparing the map engine (once after a server start, about 15 s)…",
                        "マップ描画エンジンを準備しています(サーバー起動後に1回だけ、約15秒)…"),
    "inspect.mapping": ("Drawing the map of {n} image embeddings…", "{n} 個の画像埋め込みのマップを作成しています…"),
    "inspect.map_subsampled": ("The map shows {shown} of the {total} test {total|image|images} (an even share of every class).",
                               "マップにはテスト画像 {total} 枚のうち {shown} 枚を表示しています(各クラス同じ割合)。"),
    "inspect.map_pca": ("Too few images for UMAP: the map is a PCA plane.", "UMAPには画像が少なすぎるため、PCAの平面で表示しています。"),
    "inspect.dispersion_title": ("Dispersion: tight classes, far apart", "分散: クラスはまとまり、互いに離れているか"),
    "inspect.dispersion_help": ("Measured on the held-out images' embeddings. DAPT aims to lower the spread within a "
                                "class and raise the distance between classes.",
                                "テスト画像の埋め込みで測定しています。DAPTはクラス内のばらつきを小さく、"
                                "クラス間の距離を大きくすることを狙います。"),
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
    # ------------------------------------------------------------------ dispersion table
    "disp.col_measure": ("Measure", "指標"),
    "disp.col_before": ("Before", "調整前"),
    "disp.col_after": ("After", "調整後"),
    "disp.col_change": ("Change", "変化"),
    "disp.col_verdict": ("", ""),
    "disp.col_meaning": ("What it means", "意味"),
    "disp.better": ("✓ better", "✓ 改善"),
    "disp.worse": ("✗ worse", "✗ 悪化"),
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
                       "    # unknown: unlike the training photos, check the part by hand\n"
                       "    print(prediction.label, f\"{{prediction.score:.1%}}\", \"UNKNOWN\" if prediction.unknown else \"\")\n",
                       "# dapt_core(このプロジェクト: pip install -e .)と、調整に使った\n"
                       "# バックボーン '{spec}' の重みが必要です。\n"
                       "from dapt_core import Classifier\n\n"
                       "# ファイルに記録されたバックボーンをプロンプトと一緒に読み込みます。\n"
                       "classifier = Classifier.load(\"{file}\")\n"
                       "for prediction in classifier.predict([\"part-0001.jpg\", \"part-0002.jpg\"]):\n"
                       "    # unknown: 学習写真と似ていない。部品を目視で確認\n"
                       "    print(prediction.label, f\"{{prediction.score:.1%}}\", \"UNKNOWN\" if prediction.unknown else \"\")\n"),
    "export.line_title": ("For the inspection line", "検査ラインで使う"),
    "export.line_help": ("Try the model on a few photos before exporting. Each photo gets a class, a calibrated "
                         "confidence and an \"unknown\" flag when it is unlike the training photos: on a line, "
                         "\"I don't know\" is better than a wrong confident answer.",
                         "エクスポートの前に数枚の写真で試してください。各写真にクラス、校正済みの確信度、そして"
                         "学習写真と似ていない場合は「未知」の印が付きます。ラインでは、自信満々の誤答より"
                         "「わからない」の方が安全です。"),
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
    "export.col_class": ("Class", "クラス"),
    "export.col_confidence": ("Confidence", "確信度"),
    "export.col_unknown": ("Unknown", "未知"),
    "export.col_set": ("Prediction set", "予測集合"),
    "export.unknown_yes": ("unknown: check by hand", "未知: 目視で確認"),
    "export.unknown_no": ("no", "いいえ"),
    "export.onnx_title": ("ONNX for a line PC without Python", "Python のないライン PC 向け ONNX"),
    "export.onnx_help": ("One graph with the prompts and class embeddings baked in, plus a JSON file with the "
                         "preprocessing, class names and unknown threshold. ONNX Runtime runs it from C#, C++, Java "
                         "or Python, without torch.",
                         "プロンプトとクラス埋め込みを組み込んだ1つのグラフと、前処理・クラス名・未知のしきい値を"
                         "記したJSONファイルです。ONNX Runtime で C#、C++、Java、Python から torch なしで実行できます。"),
    "export.onnx_prepare": ("Make the ONNX export", "ONNX を作成"),
    "export.onnx_download": ("Download model.onnx and model.json (ZIP)", "model.onnx と model.json をダウンロード(ZIP)"),
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
        return t(key, lang=lang, **{"reason": skipped.reason, **(skipped.params or {})})
    return skipped.reason


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
