// The widget's stylesheet, adopted into its shadow root. Kept as a string so
// widget.js stays one file.
export const CSS = `
:host{all:initial}
*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c2330}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#1f5fbf;color:#fff;cursor:pointer;box-shadow:0 6px 20px #0004;z-index:2147483646}
.launcher .icon{font-size:24px;color:#fff}
.badge{position:absolute;top:-4px;right:-4px;background:#b42318;color:#fff;border-radius:999px;font-size:12px;min-width:20px;padding:1px 5px}
.panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 110px);background:#fff;border-radius:12px;box-shadow:0 12px 40px #0004;display:flex;flex-direction:column;overflow:hidden;z-index:2147483647}
.panel[hidden]{display:none}
header{display:flex;justify-content:space-between;align-items:center;padding:12px 14px;background:#1f5fbf}
header *{color:#fff}
.title{font-weight:600}
.close{background:none;border:0;font-size:20px;cursor:pointer;line-height:1}
.body{flex:1;display:flex;flex-direction:column;min-height:0;padding:12px 14px;overflow:auto}
.form{display:flex;flex-direction:column;gap:8px}
.field{display:flex;flex-direction:column;gap:3px;font-size:13px}
.field span{color:#5f6b7c}
input,select,textarea{border:1px solid #cdd4de;border-radius:6px;padding:7px 8px;width:100%;background:#fff}
textarea{resize:none}
button{border:1px solid #cdd4de;background:#fff;border-radius:6px;padding:7px 12px;cursor:pointer}
button.primary{background:#1f5fbf;border-color:#1f5fbf;color:#fff}
:focus-visible{outline:3px solid #7aa7ff;outline-offset:1px}
.muted{color:#5f6b7c;margin:0}
.error{color:#b42318;margin:6px 0}
.thanks{font-weight:600}
.chat{display:flex;flex-direction:column;flex:1;min-height:0;gap:6px}
.status{margin:0;font-size:13px;color:#1a4a94;background:#eef4ff;border-radius:6px;padding:6px 8px}
.status *{color:#1a4a94}
.log{flex:1;overflow:auto;display:flex;flex-direction:column;gap:6px;padding:4px 0}
.msg{max-width:85%;padding:7px 10px;border-radius:10px;background:#eef2f7;white-space:pre-wrap;overflow-wrap:anywhere;display:flex;flex-direction:column}
.msg.me{align-self:flex-end;background:#1f5fbf}
.msg.me .text,.msg.me .file{color:#fff}
.msg.system{align-self:center;background:none;color:#5f6b7c;font-size:12px}
.msg .who{font-size:11px;color:#5f6b7c}
.file{font-size:13px;display:flex;flex-direction:column;gap:3px;text-decoration:underline}
.thumb{max-width:180px;max-height:140px;border-radius:6px;background:#fff}
.upload{margin:0;font-size:12px;color:#1a4a94}
.typing{min-height:18px;margin:0;font-size:12px;color:#5f6b7c;font-style:italic}
.composer{display:flex;flex-direction:column;gap:6px}
.composer .row{display:flex;gap:6px;align-items:center}
.composer .row .end{margin-left:auto}
.attach{cursor:pointer;font-size:13px;color:#1f5fbf;border:1px solid #cdd4de;border-radius:6px;padding:6px 10px}
.attach span{color:#1f5fbf}
.stars{display:flex;gap:4px}
.stars button{font-size:24px;color:#c3cad5;border:0;padding:2px 4px;background:none}
.stars button.on{color:#f0a500}
.check{display:flex;align-items:center;gap:4px}
.check input{width:auto}
`;
